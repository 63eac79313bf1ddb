//! Chinese-looking names for the demo city, built from syllable lists: districts, units,
//! addresses, people, phone numbers, equipment locations and hazard descriptions. Synthetic
//! on purpose: no real enterprise, person or address.

use super::rng::Rng;

pub const CITY_NAME: &str = "示范市";

const SYLLABLES: [&str; 60] = [
    "华", "新", "东", "西", "南", "北", "金", "银", "阳", "光", "明", "福", "瑞", "祥", "和", "兴",
    "安", "康", "泰", "盛", "丰", "鑫", "宏", "远", "锦", "绣", "江", "山", "湖", "滨", "翠", "春",
    "秋", "嘉", "德", "信", "万", "通", "达", "恒", "顺", "永", "昌", "富", "海", "天", "云", "龙",
    "凤", "紫", "星", "月", "青", "绿", "景", "悦", "城", "桥", "溪", "湾",
];

const SURNAMES: [&str; 40] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "蒋", "蔡", "沈",
];

const GIVEN: [&str; 40] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "建", "国", "文", "辉", "红", "玲", "斌", "鹏",
    "宇", "浩", "凯", "晨", "欣", "婷", "雪", "琳",
];

const DISTRICTS: [&str; 18] = [
    "东湖", "西岭", "南江", "北山", "中山", "滨江", "临河", "青松", "金桥", "新港", "云溪", "凤鸣",
    "龙泉", "白沙", "长宁", "石门", "桃源", "柳湾",
];

/// The name of the `i`-th district (0-based).
pub fn district(i: usize) -> String {
    match DISTRICTS.get(i) {
        Some(n) => format!("{n}区"),
        None => format!("示范第{}区", i + 1),
    }
}

/// A two-syllable word such as 华福 or 锦江.
pub fn word(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(&SYLLABLES), rng.pick(&SYLLABLES))
}

/// A person's name: surname and one or two given characters.
pub fn person(rng: &mut Rng) -> String {
    let mut n = format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN));
    if rng.chance(0.6) {
        let second: &&str = rng.pick(&GIVEN);
        n.push_str(second);
    }
    n
}

/// A mobile number: 11 digits starting 13, 15, 17, 18 or 19.
pub fn phone(rng: &mut Rng) -> String {
    let second = rng.pick(&['3', '5', '7', '8', '9']);
    format!("1{second}{:09}", rng.below(1_000_000_000))
}

/// A street address in `district`.
pub fn address(rng: &mut Rng, district: &str) -> String {
    let road = rng.pick(&["路", "街", "大道", "巷"]);
    format!(
        "{CITY_NAME}{district}{}{road}{}号",
        word(rng),
        rng.range(1, 999)
    )
}

/// A unit's name, after its place type.
pub fn unit(rng: &mut Rng, place: &str, district: &str) -> String {
    let w = word(rng);
    match place {
        "residential" => {
            let kind = rng.pick(&["花园", "小区", "家园", "公寓", "苑", "新村", "府"]);
            if rng.chance(0.2) {
                let phase = rng.pick(&["二期", "三期", "东区", "西区"]);
                format!("{w}{kind}{phase}")
            } else {
                format!("{w}{kind}")
            }
        }
        "office" => format!(
            "{w}{}",
            rng.pick(&["大厦", "中心", "广场", "科技园", "商务楼", "国际大厦"])
        ),
        "industrial" => format!(
            "{CITY_NAME}{w}{}有限公司",
            rng.pick(&[
                "机械",
                "电子",
                "纺织",
                "食品",
                "汽车零部件",
                "建材",
                "印染",
                "包装",
                "钢结构",
                "物流"
            ])
        ),
        "hazchem" => format!(
            "{CITY_NAME}{w}{}有限公司",
            rng.pick(&["化工", "石化", "气体", "新材料", "涂料", "精细化工"])
        ),
        "school" => format!(
            "{CITY_NAME}{w}{}",
            rng.pick(&["中学", "小学", "实验学校", "职业技术学校", "外国语学校"])
        ),
        "kindergarten" => format!("{district}{w}幼儿园"),
        "hospital" => format!(
            "{CITY_NAME}{w}{}",
            rng.pick(&["医院", "中医院", "妇幼保健院", "人民医院", "口腔医院"])
        ),
        "station" => format!(
            "{w}{}",
            rng.pick(&["火车站", "汽车客运站", "地铁站", "公交枢纽站"])
        ),
        "mall" => format!(
            "{w}{}",
            rng.pick(&["购物中心", "商场", "百货", "万象汇", "商业广场"])
        ),
        "park" => format!("{w}{}", rng.pick(&["公园", "乐园", "游乐园", "欢乐谷"])),
        "stadium" => format!(
            "{district}{w}{}",
            rng.pick(&["体育馆", "体育中心", "游泳馆"])
        ),
        "hotel" => format!("{w}{}", rng.pick(&["大酒店", "宾馆", "酒店", "国际饭店"])),
        _ => format!(
            "{CITY_NAME}{w}{}有限公司",
            rng.pick(&["物流", "建设工程", "物业管理", "供热", "燃气", "港务"])
        ),
    }
}

/// Where a piece of equipment stands, from its category and three small numbers.
pub fn location(category: &str, place: &str, a: u16, b: u8, c: u8) -> String {
    const SIDES: [&str; 4] = ["东", "西", "南", "北"];
    match category {
        "3300" => format!("{}F {}侧扶梯", b, SIDES[c as usize % 4]),
        "4D00" => format!("地下车库{a}号机械车位"),
        "4300" => format!("{a}号工地塔吊"),
        "5100" => format!("仓库{a}号叉车"),
        "5200" => format!("观光车{a}号"),
        "2200" => format!("罐车{a}号"),
        "2300" => format!("气瓶间{a}号瓶组"),
        "2400" => format!("高压氧舱{c}号"),
        "8100" => format!("长输管道{a}段"),
        "8200" => format!("公用管网{a}段"),
        "6000" => format!("游乐区{a}号设施"),
        "9000" => format!("索道{c}号线"),
        c4 if c4.starts_with('3') => {
            if place == "residential" {
                format!("{a}幢{b}单元{c}号梯")
            } else {
                format!("{a}号楼{c}号梯")
            }
        }
        c4 if c4.starts_with('4') => format!("{a}号车间{c}号起重机"),
        c4 if c4.starts_with('1') => format!("锅炉房{c}号炉"),
        c4 if c4.starts_with('2') => format!("{a}号储罐"),
        c4 if c4.starts_with('8') => format!("{a}号工艺管线"),
        _ => format!("{a}号设备"),
    }
}

/// The short prefix of a registration certificate number (使用登记证编号) by category.
pub fn certificate_prefix(category: &str) -> &'static str {
    match category.as_bytes().first() {
        Some(b'1') => "锅",
        Some(b'2') => "容",
        Some(b'3') => "梯",
        Some(b'4') => "起",
        Some(b'5') => "车",
        Some(b'6') => "游",
        Some(b'8') => "管",
        Some(b'9') => "索",
        _ => "特",
    }
}

/// Hazard findings as (checklist item code, description), by top-level category; unit-level
/// findings (the 3-2-1 checklist) under `U`.
pub fn findings(top: u8) -> &'static [(&'static str, &'static str)] {
    match top {
        b'1' => &[
            ("1000-02", "安全阀超期未校验"),
            ("1000-03", "水位表显示不清，无法判读"),
            ("1000-04", "熄火保护装置失效"),
            ("1000-05", "受压部件存在渗漏"),
            ("1000-06", "司炉人员无证上岗"),
        ],
        b'2' => &[
            ("2000-01", "压力容器超期未检仍在使用"),
            ("2000-02", "压力表超期未校验"),
            ("2000-03", "超过设计使用年限仍在使用"),
            ("2000-04", "铭牌缺失"),
        ],
        b'3' => &[
            ("3000-01", "电梯定期检验超期仍在使用"),
            ("3000-02", "层门防夹人保护装置失效"),
            ("3000-03", "门锁回路存在短接痕迹"),
            ("3000-04", "自动扶梯紧急停止装置失效"),
            ("3000-05", "维保记录不完整，未按15日周期维保"),
            ("3000-06", "轿厢紧急报警装置无法有效应答"),
            ("3000-07", "臂鼓式制动器制动衬磨损超限"),
        ],
        b'4' => &[
            ("4000-02", "紧急停止开关失效"),
            ("4000-03", "起重量限制器失效"),
            ("4000-04", "防坠安全器超期未标定"),
            ("4000-05", "司机无证操作"),
        ],
        b'5' => &[
            ("5000-01", "叉车超期未检"),
            ("5000-02", "叉车制动性能不良"),
            ("5000-03", "叉车司机无证驾驶"),
        ],
        b'6' => &[
            ("6000-02", "乘客安全压杠锁紧装置失效"),
            ("6000-04", "主要受力部件存在裂纹"),
            ("6000-05", "未进行每日试运行并记录"),
        ],
        b'8' => &[
            ("8000-01", "危化品管道未办理使用登记"),
            ("8000-02", "管道检验结论为不允许使用仍在使用"),
            ("8000-03", "紧急切断装置失效"),
            ("8000-04", "管道标识缺失，巡线记录不全"),
        ],
        b'9' => &[
            ("9000-02", "制动器制动力矩不足"),
            ("9000-04", "应急救援演练未开展"),
        ],
        _ => &[
            ("U-01", "未配备专职安全管理员"),
            ("U-03", "安全管理制度未落实"),
            ("U-04", "部分设备使用登记证未悬挂"),
            ("U-05", "作业人员证书过期"),
            ("U-06", "应急预案未按年度演练"),
        ],
    }
}
