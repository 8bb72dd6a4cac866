"""`python -m deploy` is `linkcast`."""

from deploy.cli import main

raise SystemExit(main())
