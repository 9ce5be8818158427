"""`python -m ccapp` is the same as the `ccapp` command."""

from ccapp.cli import main

raise SystemExit(main())
