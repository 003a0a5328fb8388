from delivery.deploy import main

raise SystemExit(main())
