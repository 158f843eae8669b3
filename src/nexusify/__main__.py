from nexusify.cli import main

raise SystemExit(main())
