"""`python -m bntt_core ...` runs the `bntt` command (see bntt_core/cli.py); torchrun uses it too:

    python -m bntt_core train --preset quickstart --out runs/first
    torchrun --nproc_per_node 2 -m bntt_core train --preset quickstart --out runs/ddp
"""

from bntt_core.cli import main

raise SystemExit(main())
