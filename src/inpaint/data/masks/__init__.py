"""Masks: seeded generators (PConv-Keras shapes, LaMa strokes, mixtures), NVIDIA's irregular masks, fixed evaluation
sets, hole ratios and their bins, and the factory that builds all of them from ``conf/masks``.

Inside the library a mask is float (H, W) or (B, 1, H, W) with **1 = valid, 0 = hole**; files read or written here
use white = hole. ``python -m inpaint.data.masks.make_eval_masks`` writes a fixed evaluation set.
"""
