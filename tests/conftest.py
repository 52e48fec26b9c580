import os

# Headless pygame everywhere in the tests; no audio device either.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
# The existing culture tests exercise the runtime backend (and some of its Brian2 internals);
# tests/test_culture_standalone.py picks the compiled backend explicitly.
os.environ.setdefault("DISHBRAIN_CULTURE_BACKEND", "runtime")
