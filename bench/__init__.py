"""Side-by-side benchmark: registry direct vs our proxy vs Apache (seed vhost) vs nginx.

Run from the repository root with `python -m bench` (see bench/__main__.py).
"""
