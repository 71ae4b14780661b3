# The gate's pytest plugin. Installed packages load it through the pytest11 entry point; naming it here too
# lets a plain checkout run `python -m pytest` before `pip install -e .` (pytest skips a second registration).
# pytester drives the plugin's own tests (tests/plugin).
pytest_plugins = ["vnet_accept.plugin", "pytester"]
