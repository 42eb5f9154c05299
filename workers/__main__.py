"""`python -m workers`: the background worker (all queues, with the scheduler). See workers/."""
import sys

from workers import main

if __name__ == "__main__":
    sys.exit(main())
