"""What to profile: each family's (or search space's) grid settings, as data.

A package only so that ``lut/spaces/*.json`` installs with hwadapt (see
``hwadapt.lut.space``); it holds no code.
"""
