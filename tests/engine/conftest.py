import sys
from pathlib import Path

# lsat_data.py sits beside the tests; no __init__.py, so put the folder on the path.
sys.path.insert(0, str(Path(__file__).parent))
