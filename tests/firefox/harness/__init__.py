"""The real-browser test harness: a headless Firefox with the quiesce
preload, a local page that writes to its Cache API caches, and checks of
what the browser left on disk. Python 3 standard library only."""
