"""Write the fuzzingclient spec for one run; Python 2.7 (it uses the suite's own case matcher).

Usage: python spec.py URL OUTDIR SPEC_PATH CASES...

CASES are Autobahn case ids or globs ('1.*', '7.1.5'), comma lists allowed; none means '*'.
12.* and 13.* (permessage-deflate) are left out unless AUTOBAHN_DEFLATE=1. The spec lists
the resolved ids, so summarize.py knows which cases were asked for. Exits 1, saying why, when
a pattern matches nothing.
"""
from __future__ import print_function

import json
import os
import sys

from autobahntestsuite.case import (CaseBasename, CaseCategories, Cases, CaseSetname,
                                    CaseSubCategories)
from autobahntestsuite.caseset import CaseSet

DEFLATE_CASES = ["12.*", "13.*"]


def main(url, outdir, spec_path, args):
    deflate = os.environ.get("AUTOBAHN_DEFLATE") == "1"
    patterns = [p for arg in args for p in arg.split(",") if p] or ["*"]
    excluded = [] if deflate else DEFLATE_CASES
    caseset = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
    for pattern in patterns:
        if not caseset.parseSpecCases({"cases": [pattern], "exclude-cases": excluded}):
            deflate_only = caseset.parseSpecCases({"cases": [pattern], "exclude-cases": []})
            if deflate_only:
                print("autobahn: '%s' selects only permessage-deflate cases (12.*, 13.*): "
                      "they need --deflate or AUTOBAHN_DEFLATE=1" % pattern)
            else:
                print("autobahn: '%s' matches no case" % pattern)
            return 1
    ids = caseset.parseSpecCases({"cases": patterns, "exclude-cases": excluded})
    spec = {
        "outdir": outdir,
        "servers": [{"agent": "postern", "url": url}],
        "cases": ids,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=1)
    print("autobahn: %d cases against %s%s" % (len(ids), url, " (deflate on)" if deflate else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
