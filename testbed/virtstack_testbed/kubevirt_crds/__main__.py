"""`python -m virtstack_testbed.kubevirt_crds`: print the CRDs as one multi-document YAML."""

import sys

import yaml

from . import generate_crds

yaml.safe_dump_all(generate_crds(), sys.stdout, sort_keys=False)
