from pvdesk.cli import main

raise SystemExit(main())
