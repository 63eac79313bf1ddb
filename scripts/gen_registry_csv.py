#!/usr/bin/env python3
"""Writes a synthetic registry as the two import CSVs (units, equipment), deterministically.

Usage: scripts/gen_registry_csv.py OUT_DIR [--units N] [--equipment N] [--seed N] [--bom]

The files follow the import contract in DESIGN.md: every USCC carries a valid check digit,
registration codes are 20 digits, categories come from the catalogue. Used by
scripts/bench_import.sh; handy for trying the importer by hand.
"""
import argparse
import os
import random

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
PLACES = ["residential"] * 8 + ["office"] * 5 + ["industrial"] * 5 + [
    "school", "kindergarten", "hospital", "station", "mall", "mall", "park", "stadium",
    "hotel", "hotel", "hazchem", "other"]
CATEGORIES = ["3110"] * 50 + ["3120"] * 6 + ["3300"] * 5 + ["3200"] * 2 + ["4100"] * 4 + \
    ["4200"] * 2 + ["4800"] * 2 + ["4D00"] * 2 + ["5100"] * 8 + ["1100"] * 3 + ["1200"] * 2 + \
    ["2100"] * 5 + ["2300"] + ["8300"] * 3 + ["6000"] + ["9000"]


def uscc(region, n):
    body = "91" + region + "%09d" % n
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS))
    return body + ALPHABET[(31 - total % 31) % 31]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--units", type=int, default=50000)
    ap.add_argument("--equipment", type=int, default=300000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bom", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    districts = ["3301%02d" % d for d in range(2, 14)]
    bom = "\ufeff" if a.bom else ""
    regions = []
    with open(os.path.join(a.out, "units.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(bom + "uscc,name,address,region_code,place_type,contact_name,contact_phone\n")
        for n in range(1, a.units + 1):
            region = districts[n % len(districts)]
            regions.append(region)
            f.write("%s,示范单位%d,示范路%d号,%s,%s,联系人%d,0571-%08d\n" % (
                uscc(region, n), n, n, region, rng.choice(PLACES), n % 1000, n))
    with open(os.path.join(a.out, "equipment.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(bom + "registration_code,unit_uscc,category_code,reg_cert_no,reg_status,"
                "commissioned_on,last_inspection_on,next_inspection_due,inspection_conclusion,"
                "location,brake_type,fault_count_12m,hazchem\n")
        for n in range(1, a.equipment + 1):
            u = rng.randint(1, a.units)
            cat = rng.choice(CATEGORIES)
            year = rng.randint(1995, 2025)
            if rng.random() < 0.08:  # overdue: the inspection due this spring was missed
                last, due = rng.randint(2022, 2024), 2025
            else:
                last = rng.randint(2025, 2026)
                due = last + 1
            status = "registered" if rng.random() > 0.03 else "unregistered"
            brake = "arm_drum" if cat.startswith("3") and rng.random() < 0.05 else "disc"
            f.write("%s%016d,%s,%s,证%d,%s,%d-%02d-01,%d-03-01,%d-03-01,pass,%d号楼,%s,%d,%s\n" % (
                cat[:1] + "110", n, uscc(regions[u - 1], u), cat, n, status, year,
                rng.randint(1, 12), last, due, n % 40, brake, int(rng.expovariate(1.0)),
                "true" if cat == "8300" else "false"))


if __name__ == "__main__":
    main()
