# lit configuration for npuc's FileCheck tests.
#
# Run through tools/test.sh, which puts target/debug (npuc) and LLVM 22's bin (FileCheck)
# on PATH. Each folder holds one area's tests: `// RUN:` lines drive `npuc`, FileCheck
# checks what it prints.
import os

import lit.formats

config.name = "npuc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".nir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "Inputs"]

repo = os.path.dirname(config.test_source_root)
config.substitutions.append(("%fixtures", os.path.join(repo, "tools", "fixtures", "models")))
config.environment["PATH"] = os.environ.get("PATH", "")
