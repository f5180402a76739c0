# SPDX-License-Identifier: MIT
"""Shared command line of the oracle scripts in tests/ref/:
  <script> --out DIR [--seed S]   write fresh cases into DIR
  <script> --golden               write the fixed-seed cases into
                                  tests/golden/<name>/ (seed 1)
"""
import argparse
import os


def main_cases(make_cases, golden_name, before=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--golden", action="store_true")
    a = ap.parse_args()
    if before:
        before()
    if a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        make_cases(os.path.join(here, "..", "golden", golden_name), 1)
    elif a.out:
        make_cases(a.out, a.seed)
    else:
        ap.error("give --out DIR or --golden")
