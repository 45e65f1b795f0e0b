import sys

from ner_engine.cli import main

sys.exit(main())
