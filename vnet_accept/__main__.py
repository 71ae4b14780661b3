from vnet_accept.cli import main

raise SystemExit(main())
