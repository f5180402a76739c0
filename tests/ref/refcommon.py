# SPDX-License-Identifier: MIT
"""Shared command line of the oracle scripts in tests/ref/:
  <script> --out DIR [--seed S]   write fresh cases into DIR
  <script> --golden               write the fixed-seed cases into
                                  tests/golden/<name>/ (seed golden_seed,
                                  1 unless the script says otherwise)
"""
import argparse
import os


def main_cases(make_cases, golden_name, before=None, golden_seed=1,
               seed=1, mkdir=False):
    """make_cases(DIR, SEED) on the command line's choice; before() runs
    first (e.g. torch.set_num_threads(1)); seed is --seed's default;
    mkdir creates DIR first."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--golden", action="store_true")
    a = ap.parse_args()
    if before:
        before()
    if a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        d, s = os.path.join(here, "..", "golden", golden_name), golden_seed
    elif a.out:
        d, s = a.out, a.seed
    else:
        ap.error("give --out DIR or --golden")
    if mkdir:
        os.makedirs(d, exist_ok=True)
    make_cases(d, s)
