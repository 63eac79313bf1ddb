-- Registry: code tables, units, equipment, checklist templates, and the hazards table that the
-- risk facts read (its lifecycle is built by the work capability). All synced.

CREATE TABLE codes (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    parent_code TEXT,
    label_zh TEXT NOT NULL,
    label_en TEXT NOT NULL,
    sort_order INTEGER NOT NULL,
    attrs TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL,
    UNIQUE (kind, code)
);
CREATE INDEX codes_version_idx ON codes (version);

CREATE TABLE units (
    id TEXT PRIMARY KEY NOT NULL,
    uscc TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    region_code TEXT NOT NULL,
    place_type TEXT NOT NULL,
    public_gathering BOOLEAN NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    blacklisted_from DATE,
    blacklisted_until DATE,
    last_accident_on DATE,
    last_complaint_on DATE,
    open_hazards INTEGER NOT NULL DEFAULT 0,
    overdue_hazards INTEGER NOT NULL DEFAULT 0,
    risk_flags TEXT NOT NULL DEFAULT '[]',
    risk_score INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX units_version_idx ON units (version);
CREATE INDEX units_region_idx ON units (region_code, id);
CREATE INDEX units_risk_idx ON units (risk_score);

CREATE TABLE equipment (
    id TEXT PRIMARY KEY NOT NULL,
    registration_code TEXT NOT NULL UNIQUE,
    unit_id TEXT NOT NULL REFERENCES units (id),
    region_code TEXT NOT NULL,
    category_code TEXT NOT NULL,
    reg_cert_no TEXT NOT NULL,
    reg_status TEXT NOT NULL CHECK (reg_status IN ('registered', 'unregistered', 'suspended', 'scrapped')),
    commissioned_on DATE,
    last_inspection_on DATE,
    next_inspection_due DATE,
    inspection_conclusion TEXT NOT NULL,
    location TEXT NOT NULL,
    brake_type TEXT NOT NULL,
    fault_count_12m INTEGER NOT NULL,
    hazchem BOOLEAN NOT NULL,
    risk_flags TEXT NOT NULL DEFAULT '[]',
    risk_score INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX equipment_version_idx ON equipment (version);
CREATE INDEX equipment_unit_idx ON equipment (unit_id);
CREATE INDEX equipment_region_idx ON equipment (region_code, id);
CREATE INDEX equipment_due_idx ON equipment (next_inspection_due);

CREATE TABLE checklist_templates (
    id TEXT PRIMARY KEY NOT NULL,
    code TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('unit', 'equipment')),
    category_code TEXT,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    items TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX checklist_templates_version_idx ON checklist_templates (version);

CREATE TABLE hazards (
    id TEXT PRIMARY KEY NOT NULL,
    unit_id TEXT NOT NULL REFERENCES units (id),
    equipment_id TEXT REFERENCES equipment (id),
    region_code TEXT NOT NULL,
    inspection_id TEXT,
    item_code TEXT,
    description TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('minor', 'general', 'major')),
    state TEXT NOT NULL CHECK (state IN ('reported', 'fixed_on_site', 'classified', 'rectifying', 'rectification_submitted', 'verified', 'closed')),
    fixed_on_site BOOLEAN NOT NULL,
    deadline TIMESTAMP,
    notice_no TEXT,
    reported_by TEXT NOT NULL REFERENCES users (id),
    reported_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX hazards_version_idx ON hazards (version);
CREATE INDEX hazards_unit_idx ON hazards (unit_id);
CREATE INDEX hazards_region_idx ON hazards (region_code, id);
-- Code tables, with Chinese and English labels. `attrs` is JSON: for equipment categories
-- the typical periodic-inspection interval in months (data, not code: admins may change it),
-- for place types whether it is a public gathering place (公众聚集场所).
INSERT INTO codes (id, kind, code, parent_code, label_zh, label_en, sort_order, attrs, version) VALUES
('equipment_category:1000', 'equipment_category', '1000', NULL, '锅炉', 'Boiler', 10, '{"interval_months": 12}', 0),
('equipment_category:1100', 'equipment_category', '1100', '1000', '承压蒸汽锅炉', 'Steam boiler', 11, '{"interval_months": 12}', 0),
('equipment_category:1200', 'equipment_category', '1200', '1000', '承压热水锅炉', 'Hot-water boiler', 12, '{"interval_months": 12}', 0),
('equipment_category:1300', 'equipment_category', '1300', '1000', '有机热载体锅炉', 'Organic heat-carrier boiler', 13, '{"interval_months": 12}', 0),
('equipment_category:2000', 'equipment_category', '2000', NULL, '压力容器', 'Pressure vessel', 20, '{"interval_months": 36}', 0),
('equipment_category:2100', 'equipment_category', '2100', '2000', '固定式压力容器', 'Fixed pressure vessel', 21, '{"interval_months": 36}', 0),
('equipment_category:2200', 'equipment_category', '2200', '2000', '移动式压力容器', 'Mobile pressure vessel', 22, '{"interval_months": 12}', 0),
('equipment_category:2300', 'equipment_category', '2300', '2000', '气瓶', 'Gas cylinder', 23, '{"interval_months": 36}', 0),
('equipment_category:2400', 'equipment_category', '2400', '2000', '氧舱', 'Oxygen chamber', 24, '{"interval_months": 12}', 0),
('equipment_category:3000', 'equipment_category', '3000', NULL, '电梯', 'Elevator', 30, '{"interval_months": 12}', 0),
('equipment_category:3110', 'equipment_category', '3110', '3000', '曳引驱动乘客电梯', 'Traction passenger elevator', 31, '{"interval_months": 12}', 0),
('equipment_category:3120', 'equipment_category', '3120', '3000', '曳引驱动载货电梯', 'Traction freight elevator', 32, '{"interval_months": 12}', 0),
('equipment_category:3200', 'equipment_category', '3200', '3000', '液压驱动电梯', 'Hydraulic elevator', 33, '{"interval_months": 12}', 0),
('equipment_category:3300', 'equipment_category', '3300', '3000', '自动扶梯与自动人行道', 'Escalator / moving walk', 34, '{"interval_months": 12}', 0),
('equipment_category:3400', 'equipment_category', '3400', '3000', '其他类型电梯', 'Other elevator', 35, '{"interval_months": 12}', 0),
('equipment_category:4000', 'equipment_category', '4000', NULL, '起重机械', 'Lifting machinery', 40, '{"interval_months": 24}', 0),
('equipment_category:4100', 'equipment_category', '4100', '4000', '桥式起重机', 'Bridge crane', 41, '{"interval_months": 24}', 0),
('equipment_category:4200', 'equipment_category', '4200', '4000', '门式起重机', 'Gantry crane', 42, '{"interval_months": 24}', 0),
('equipment_category:4300', 'equipment_category', '4300', '4000', '塔式起重机', 'Tower crane', 43, '{"interval_months": 12}', 0),
('equipment_category:4400', 'equipment_category', '4400', '4000', '流动式起重机', 'Mobile crane', 44, '{"interval_months": 12}', 0),
('equipment_category:4800', 'equipment_category', '4800', '4000', '升降机', 'Hoist', 45, '{"interval_months": 12}', 0),
('equipment_category:4D00', 'equipment_category', '4D00', '4000', '机械式停车设备', 'Mechanical parking system', 46, '{"interval_months": 24}', 0),
('equipment_category:5000', 'equipment_category', '5000', NULL, '场（厂）内专用机动车辆', 'In-plant motor vehicle', 50, '{"interval_months": 12}', 0),
('equipment_category:5100', 'equipment_category', '5100', '5000', '机动工业车辆（叉车）', 'Forklift', 51, '{"interval_months": 12}', 0),
('equipment_category:5200', 'equipment_category', '5200', '5000', '非公路用旅游观光车辆', 'Sightseeing car', 52, '{"interval_months": 12}', 0),
('equipment_category:6000', 'equipment_category', '6000', NULL, '大型游乐设施', 'Amusement ride', 60, '{"interval_months": 12}', 0),
('equipment_category:8000', 'equipment_category', '8000', NULL, '压力管道', 'Pressure pipeline', 80, '{"interval_months": 72}', 0),
('equipment_category:8100', 'equipment_category', '8100', '8000', '长输管道', 'Long-distance pipeline', 81, '{"interval_months": 72}', 0),
('equipment_category:8200', 'equipment_category', '8200', '8000', '公用管道', 'Public utility pipeline', 82, '{"interval_months": 72}', 0),
('equipment_category:8300', 'equipment_category', '8300', '8000', '工业管道', 'Industrial pipeline', 83, '{"interval_months": 72}', 0),
('equipment_category:9000', 'equipment_category', '9000', NULL, '客运索道', 'Passenger ropeway', 90, '{"interval_months": 12}', 0),
('place_type:school', 'place_type', 'school', NULL, '学校', 'School', 1, '{"public_gathering": true}', 0),
('place_type:kindergarten', 'place_type', 'kindergarten', NULL, '幼儿园', 'Kindergarten', 2, '{"public_gathering": true}', 0),
('place_type:hospital', 'place_type', 'hospital', NULL, '医院', 'Hospital', 3, '{"public_gathering": true}', 0),
('place_type:station', 'place_type', 'station', NULL, '车站', 'Station', 4, '{"public_gathering": true}', 0),
('place_type:mall', 'place_type', 'mall', NULL, '商场', 'Shopping mall', 5, '{"public_gathering": true}', 0),
('place_type:park', 'place_type', 'park', NULL, '公园', 'Park', 6, '{"public_gathering": true}', 0),
('place_type:stadium', 'place_type', 'stadium', NULL, '体育场馆', 'Stadium', 7, '{"public_gathering": true}', 0),
('place_type:hotel', 'place_type', 'hotel', NULL, '宾馆酒店', 'Hotel', 8, '{"public_gathering": false}', 0),
('place_type:residential', 'place_type', 'residential', NULL, '住宅小区', 'Residential estate', 9, '{"public_gathering": false}', 0),
('place_type:office', 'place_type', 'office', NULL, '办公楼', 'Office building', 10, '{"public_gathering": false}', 0),
('place_type:industrial', 'place_type', 'industrial', NULL, '工业企业', 'Industrial site', 11, '{"public_gathering": false}', 0),
('place_type:hazchem', 'place_type', 'hazchem', NULL, '危险化学品企业', 'Hazardous-chemical enterprise', 12, '{"public_gathering": false}', 0),
('place_type:other', 'place_type', 'other', NULL, '其他', 'Other', 13, '{"public_gathering": false}', 0),
('reg_status:registered', 'reg_status', 'registered', NULL, '已登记', 'Registered', 1, '{}', 0),
('reg_status:unregistered', 'reg_status', 'unregistered', NULL, '未登记', 'Unregistered', 2, '{}', 0),
('reg_status:suspended', 'reg_status', 'suspended', NULL, '停用', 'Suspended', 3, '{}', 0),
('reg_status:scrapped', 'reg_status', 'scrapped', NULL, '已报废', 'Scrapped', 4, '{}', 0),
('inspection_conclusion:pass', 'inspection_conclusion', 'pass', NULL, '合格', 'Pass', 1, '{}', 0),
('inspection_conclusion:pass_after_fix', 'inspection_conclusion', 'pass_after_fix', NULL, '复检合格', 'Pass after re-inspection', 2, '{}', 0),
('inspection_conclusion:fail', 'inspection_conclusion', 'fail', NULL, '不合格', 'Fail', 3, '{}', 0),
('inspection_conclusion:not_allowed', 'inspection_conclusion', 'not_allowed', NULL, '不允许使用', 'Not allowed to use', 4, '{}', 0),
('hazard_level:minor', 'hazard_level', 'minor', NULL, '轻微隐患', 'Minor hazard', 1, '{}', 0),
('hazard_level:general', 'hazard_level', 'general', NULL, '一般事故隐患', 'General hazard', 2, '{}', 0),
('hazard_level:major', 'hazard_level', 'major', NULL, '重大事故隐患', 'Major hazard', 3, '{}', 0),
('hazard_state:reported', 'hazard_state', 'reported', NULL, '已上报', 'Reported', 1, '{}', 0),
('hazard_state:fixed_on_site', 'hazard_state', 'fixed_on_site', NULL, '立查立改', 'Fixed on site', 2, '{}', 0),
('hazard_state:classified', 'hazard_state', 'classified', NULL, '已定级', 'Classified', 3, '{}', 0),
('hazard_state:rectifying', 'hazard_state', 'rectifying', NULL, '整改中', 'Rectifying', 4, '{}', 0),
('hazard_state:rectification_submitted', 'hazard_state', 'rectification_submitted', NULL, '整改待复查', 'Rectification submitted', 5, '{}', 0),
('hazard_state:verified', 'hazard_state', 'verified', NULL, '复查通过', 'Verified', 6, '{}', 0),
('hazard_state:closed', 'hazard_state', 'closed', NULL, '已销号', 'Closed', 7, '{}', 0),
('assignment_kind:routine', 'assignment_kind', 'routine', NULL, '日常检查', 'Routine inspection', 1, '{}', 0),
('assignment_kind:campaign', 'assignment_kind', 'campaign', NULL, '专项检查', 'Campaign inspection', 2, '{}', 0),
('assignment_kind:surprise', 'assignment_kind', 'surprise', NULL, '四不两直检查', 'Unannounced (four-no-two-direct)', 3, '{"enforcement": true}', 0),
('assignment_kind:lookback', 'assignment_kind', 'lookback', NULL, '回头看', 'Look-back', 4, '{}', 0),
('assignment_kind:joint', 'assignment_kind', 'joint', NULL, '联合执法', 'Joint enforcement', 5, '{"enforcement": true}', 0),
('assignment_kind:complaint', 'assignment_kind', 'complaint', NULL, '投诉举报核查', 'Complaint check', 6, '{"enforcement": true}', 0),
('enforcement_kind:directive', 'enforcement_kind', 'directive', NULL, '特种设备安全监察指令书', 'Directive', 1, '{}', 0),
('enforcement_kind:stop_use', 'enforcement_kind', 'stop_use', NULL, '责令停止使用', 'Order to stop use', 2, '{}', 0),
('enforcement_kind:seal_up', 'enforcement_kind', 'seal_up', NULL, '查封扣押', 'Seal-up', 3, '{}', 0),
('enforcement_kind:fine', 'enforcement_kind', 'fine', NULL, '罚款', 'Fine', 4, '{}', 0),
('enforcement_kind:interview', 'enforcement_kind', 'interview', NULL, '约谈', 'Interview', 5, '{}', 0),
('enforcement_kind:exposure', 'enforcement_kind', 'exposure', NULL, '曝光', 'Public exposure', 6, '{}', 0),
('enforcement_kind:blacklist', 'enforcement_kind', 'blacklist', NULL, '列入黑名单', 'Blacklist', 7, '{}', 0),
('enforcement_kind:referral', 'enforcement_kind', 'referral', NULL, '移送', 'Referral', 8, '{}', 0),
('risk_flag:overdue_inspection', 'risk_flag', 'overdue_inspection', NULL, '超期未检', 'Overdue periodic inspection', 1, '{}', 0),
('risk_flag:failed_inspection', 'risk_flag', 'failed_inspection', NULL, '检验不合格仍在用', 'Failed inspection, still registered in use', 2, '{}', 0),
('risk_flag:unregistered', 'risk_flag', 'unregistered', NULL, '未办理使用登记', 'Unregistered', 3, '{}', 0),
('risk_flag:public_gathering', 'risk_flag', 'public_gathering', NULL, '公众聚集场所', 'Public gathering place', 4, '{}', 0),
('risk_flag:old_elevator', 'risk_flag', 'old_elevator', NULL, '老旧电梯', 'Old elevator', 5, '{}', 0),
('risk_flag:arm_drum_brake', 'risk_flag', 'arm_drum_brake', NULL, '臂鼓式制动器电梯', 'Elevator with arm-type drum brake', 6, '{}', 0),
('risk_flag:frequent_faults', 'risk_flag', 'frequent_faults', NULL, '故障频发', 'Frequent faults', 7, '{}', 0),
('risk_flag:hazchem_pipeline_unregistered', 'risk_flag', 'hazchem_pipeline_unregistered', NULL, '危化品管道未登记', 'Hazardous-chemical pipeline unregistered', 8, '{}', 0),
('risk_flag:hazchem_pipeline_uninspected', 'risk_flag', 'hazchem_pipeline_uninspected', NULL, '危化品管道未检验', 'Hazardous-chemical pipeline uninspected', 9, '{}', 0),
('risk_flag:open_hazards', 'risk_flag', 'open_hazards', NULL, '存在未整改隐患', 'Unrectified hazards', 10, '{}', 0),
('risk_flag:overdue_hazards', 'risk_flag', 'overdue_hazards', NULL, '隐患逾期未整改', 'Hazards past their deadline', 11, '{}', 0),
('risk_flag:major_hazards', 'risk_flag', 'major_hazards', NULL, '存在重大事故隐患', 'Open major hazards', 12, '{}', 0),
('risk_flag:recent_accident', 'risk_flag', 'recent_accident', NULL, '近年发生事故', 'Accident in recent years', 13, '{}', 0),
('risk_flag:recent_complaint', 'risk_flag', 'recent_complaint', NULL, '投诉举报属实', 'Substantiated complaint', 14, '{}', 0),
('risk_flag:blacklisted', 'risk_flag', 'blacklisted', NULL, '列入黑名单', 'Blacklisted', 15, '{}', 0);

-- Checklist templates: the unit-level 3-2-1 template and one per equipment category. An item
-- may name the GB 45067-2024 major-hazard criterion it maps to (`major_clause`); a "fail" on
-- such an item proposes the level "major". Admins edit them through the API.
INSERT INTO checklist_templates (id, code, scope, category_code, title_zh, title_en, items, active, updated_at, version) VALUES
('01936b00-0000-7000-8000-000000000001', 'unit-321', 'unit', NULL, '使用单位“三落实、两有证、一应急”检查表', 'Unit 3-2-1 checklist', '[
 {"code": "U-01", "text_zh": "设置特种设备安全管理机构或配备专职安全管理员", "text_en": "Safety management body or full-time safety manager in place", "major_clause": null, "per_equipment": false},
 {"code": "U-02", "text_zh": "主要负责人、安全总监、安全员责任落实", "text_en": "Principal, safety director and safety officers named and in post", "major_clause": null, "per_equipment": false},
 {"code": "U-03", "text_zh": "安全管理制度和岗位责任制度建立并执行", "text_en": "Safety rules and job responsibilities established and followed", "major_clause": null, "per_equipment": false},
 {"code": "U-04", "text_zh": "特种设备办理使用登记，登记证齐全", "text_en": "Equipment registered; registration certificates complete", "major_clause": "GB 45067-2024 通用: 未办理使用登记仍继续使用", "per_equipment": true},
 {"code": "U-05", "text_zh": "作业人员持证上岗", "text_en": "Operators hold valid certificates", "major_clause": null, "per_equipment": false},
 {"code": "U-06", "text_zh": "制定应急预案并每年至少演练一次", "text_en": "Emergency plan in place and drilled at least yearly", "major_clause": null, "per_equipment": false}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000001000', 'cat-1000', 'equipment', '1000', '锅炉检查表', 'Boiler checklist', '[
 {"code": "1000-01", "text_zh": "在定期检验有效期内", "text_en": "Periodic inspection valid", "major_clause": "GB 45067-2024 通用: 未经定期检验或检验不合格仍继续使用", "per_equipment": true},
 {"code": "1000-02", "text_zh": "安全阀齐全、有效", "text_en": "Safety valves present and working", "major_clause": "GB 45067-2024 锅炉: 安全阀缺失或失效", "per_equipment": true},
 {"code": "1000-03", "text_zh": "水位表、压力表完好", "text_en": "Water-level and pressure gauges working", "major_clause": "GB 45067-2024 锅炉: 水位表或压力表失效", "per_equipment": true},
 {"code": "1000-04", "text_zh": "联锁保护及熄火保护有效", "text_en": "Interlock and flame-out protection working", "major_clause": "GB 45067-2024 锅炉: 联锁保护或熄火保护失效", "per_equipment": true},
 {"code": "1000-05", "text_zh": "受压部件无泄漏", "text_en": "No leaks from pressure parts", "major_clause": "GB 45067-2024 锅炉: 受压部件泄漏", "per_equipment": true},
 {"code": "1000-06", "text_zh": "司炉人员持证、运行记录完整", "text_en": "Certified operator on duty; operating log complete", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000002000', 'cat-2000', 'equipment', '2000', '压力容器检查表', 'Pressure vessel checklist', '[
 {"code": "2000-01", "text_zh": "在定期检验有效期内", "text_en": "Periodic inspection valid", "major_clause": "GB 45067-2024 通用: 未经定期检验或检验不合格仍继续使用", "per_equipment": true},
 {"code": "2000-02", "text_zh": "安全附件（安全阀、爆破片、压力表）齐全有效", "text_en": "Safety accessories (valves, bursting discs, gauges) present and working", "major_clause": "GB 45067-2024 通用: 安全附件缺失或失效", "per_equipment": true},
 {"code": "2000-03", "text_zh": "未超过设计使用年限", "text_en": "Within design service life", "major_clause": "GB 45067-2024 通用: 超过设计使用年限仍继续使用", "per_equipment": true},
 {"code": "2000-04", "text_zh": "铭牌、标识清晰", "text_en": "Nameplate and markings legible", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000003000', 'cat-3000', 'equipment', '3000', '电梯检查表', 'Elevator checklist', '[
 {"code": "3000-01", "text_zh": "在定期检验有效期内且结论合格", "text_en": "Periodic inspection valid with a passing conclusion", "major_clause": "GB 45067-2024 电梯: 检验结论不合格仍继续使用", "per_equipment": true},
 {"code": "3000-02", "text_zh": "层门、轿门防夹人保护装置有效", "text_en": "Door anti-pinch protection working", "major_clause": "GB 45067-2024 电梯: 门防夹人保护装置失效", "per_equipment": true},
 {"code": "3000-03", "text_zh": "门锁回路未被短接", "text_en": "Door-lock circuit not short-circuited", "major_clause": "GB 45067-2024 电梯: 门锁回路被短接", "per_equipment": true},
 {"code": "3000-04", "text_zh": "自动扶梯紧急停止装置齐全有效", "text_en": "Escalator emergency stop present and working", "major_clause": "GB 45067-2024 电梯: 自动扶梯紧急停止装置缺失或失效", "per_equipment": true},
 {"code": "3000-05", "text_zh": "维保单位每15日至少维保一次，记录完整", "text_en": "Maintained at least every 15 days; records complete", "major_clause": null, "per_equipment": true},
 {"code": "3000-06", "text_zh": "紧急报警装置能有效应答", "text_en": "Emergency alarm answered", "major_clause": null, "per_equipment": true},
 {"code": "3000-07", "text_zh": "制动器型式（是否臂鼓式）及其状态", "text_en": "Brake type (arm-type drum brake?) and its condition", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000004000', 'cat-4000', 'equipment', '4000', '起重机械检查表', 'Lifting machinery checklist', '[
 {"code": "4000-01", "text_zh": "经监督检验且在定期检验有效期内", "text_en": "Supervisory inspection done; periodic inspection valid", "major_clause": "GB 45067-2024 起重机械: 未经监督检验仍继续使用", "per_equipment": true},
 {"code": "4000-02", "text_zh": "紧急停止开关有效", "text_en": "Emergency stop working", "major_clause": "GB 45067-2024 起重机械: 紧急停止开关失效", "per_equipment": true},
 {"code": "4000-03", "text_zh": "起重量限制器、力矩限制器有效", "text_en": "Load and moment limiters working", "major_clause": "GB 45067-2024 起重机械: 起重量或力矩限制器失效", "per_equipment": true},
 {"code": "4000-04", "text_zh": "防坠安全器有效（升降机）", "text_en": "Fall arrester working (hoists)", "major_clause": "GB 45067-2024 起重机械: 防坠安全器失效", "per_equipment": true},
 {"code": "4000-05", "text_zh": "司机、指挥人员持证", "text_en": "Operators and signallers certified", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000005000', 'cat-5000', 'equipment', '5000', '场（厂）内专用机动车辆检查表', 'In-plant vehicle checklist', '[
 {"code": "5000-01", "text_zh": "在定期检验有效期内", "text_en": "Periodic inspection valid", "major_clause": "GB 45067-2024 通用: 未经定期检验或检验不合格仍继续使用", "per_equipment": true},
 {"code": "5000-02", "text_zh": "制动、转向、灯光、喇叭有效", "text_en": "Brakes, steering, lights and horn working", "major_clause": "GB 45067-2024 通用: 安全保护装置缺失或失效", "per_equipment": true},
 {"code": "5000-03", "text_zh": "司机持证上岗", "text_en": "Driver certified", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000006000', 'cat-6000', 'equipment', '6000', '大型游乐设施检查表', 'Amusement ride checklist', '[
 {"code": "6000-01", "text_zh": "在定期检验有效期内", "text_en": "Periodic inspection valid", "major_clause": "GB 45067-2024 通用: 未经定期检验或检验不合格仍继续使用", "per_equipment": true},
 {"code": "6000-02", "text_zh": "乘客束缚装置、锁紧装置有效", "text_en": "Passenger restraints and locks working", "major_clause": "GB 45067-2024 游乐设施: 束缚或锁紧装置失效", "per_equipment": true},
 {"code": "6000-03", "text_zh": "制动装置有效", "text_en": "Brakes working", "major_clause": "GB 45067-2024 游乐设施: 制动装置失效", "per_equipment": true},
 {"code": "6000-04", "text_zh": "主要受力部件无裂纹", "text_en": "No cracks in main load-bearing parts", "major_clause": "GB 45067-2024 游乐设施: 主要受力部件裂纹", "per_equipment": true},
 {"code": "6000-05", "text_zh": "每日试运行并记录", "text_en": "Daily trial run recorded", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000008000', 'cat-8000', 'equipment', '8000', '压力管道检查表', 'Pressure pipeline checklist', '[
 {"code": "8000-01", "text_zh": "已办理使用登记", "text_en": "Registered for use", "major_clause": "GB 45067-2024 通用: 未办理使用登记仍继续使用", "per_equipment": true},
 {"code": "8000-02", "text_zh": "定期检验结论允许使用", "text_en": "Periodic inspection allows use", "major_clause": "GB 45067-2024 压力管道: 检验结论为不允许使用仍继续使用", "per_equipment": true},
 {"code": "8000-03", "text_zh": "安全阀、紧急切断装置有效", "text_en": "Safety valves and emergency shut-off working", "major_clause": "GB 45067-2024 压力管道: 安全阀或紧急切断装置失效", "per_equipment": true},
 {"code": "8000-04", "text_zh": "危化品管道标识、巡线记录完整", "text_en": "Hazardous-chemical pipeline marked; patrol records complete", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0),
('01936b00-0000-7000-8000-000000009000', 'cat-9000', 'equipment', '9000', '客运索道检查表', 'Passenger ropeway checklist', '[
 {"code": "9000-01", "text_zh": "在定期检验有效期内", "text_en": "Periodic inspection valid", "major_clause": "GB 45067-2024 通用: 未经定期检验或检验不合格仍继续使用", "per_equipment": true},
 {"code": "9000-02", "text_zh": "制动器有效", "text_en": "Brakes working", "major_clause": "GB 45067-2024 客运索道: 制动器失效", "per_equipment": true},
 {"code": "9000-03", "text_zh": "主要受力部件无裂纹", "text_en": "No cracks in main load-bearing parts", "major_clause": "GB 45067-2024 客运索道: 主要受力部件裂纹", "per_equipment": true},
 {"code": "9000-04", "text_zh": "应急救援设备齐全，每年演练", "text_en": "Rescue equipment complete; drilled yearly", "major_clause": null, "per_equipment": true}
]', TRUE, '2026-11-25 00:00:00', 0);

-- Seeded rows are one sync event, like any other write.
UPDATE sync_clock SET seq = seq + 1 WHERE id = 1;
UPDATE codes SET version = (SELECT seq FROM sync_clock WHERE id = 1);
UPDATE checklist_templates SET version = (SELECT seq FROM sync_clock WHERE id = 1);

-- Only db::sync_tx writes synced tables.
CREATE TRIGGER codes_sync_guard_insert BEFORE INSERT ON codes
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table codes written outside sync_tx'); END;
CREATE TRIGGER codes_sync_guard_update BEFORE UPDATE ON codes
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table codes written outside sync_tx'); END;
CREATE TRIGGER codes_sync_guard_delete BEFORE DELETE ON codes
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table codes written outside sync_tx'); END;
CREATE TRIGGER units_sync_guard_insert BEFORE INSERT ON units
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table units written outside sync_tx'); END;
CREATE TRIGGER units_sync_guard_update BEFORE UPDATE ON units
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table units written outside sync_tx'); END;
CREATE TRIGGER units_sync_guard_delete BEFORE DELETE ON units
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table units written outside sync_tx'); END;
CREATE TRIGGER equipment_sync_guard_insert BEFORE INSERT ON equipment
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table equipment written outside sync_tx'); END;
CREATE TRIGGER equipment_sync_guard_update BEFORE UPDATE ON equipment
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table equipment written outside sync_tx'); END;
CREATE TRIGGER equipment_sync_guard_delete BEFORE DELETE ON equipment
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table equipment written outside sync_tx'); END;
CREATE TRIGGER checklist_templates_sync_guard_insert BEFORE INSERT ON checklist_templates
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table checklist_templates written outside sync_tx'); END;
CREATE TRIGGER checklist_templates_sync_guard_update BEFORE UPDATE ON checklist_templates
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table checklist_templates written outside sync_tx'); END;
CREATE TRIGGER checklist_templates_sync_guard_delete BEFORE DELETE ON checklist_templates
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table checklist_templates written outside sync_tx'); END;
CREATE TRIGGER hazards_sync_guard_insert BEFORE INSERT ON hazards
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table hazards written outside sync_tx'); END;
CREATE TRIGGER hazards_sync_guard_update BEFORE UPDATE ON hazards
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table hazards written outside sync_tx'); END;
CREATE TRIGGER hazards_sync_guard_delete BEFORE DELETE ON hazards
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table hazards written outside sync_tx'); END;
