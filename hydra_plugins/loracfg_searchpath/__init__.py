"""Hydra SearchPathPlugin: puts loracfg's shipped config groups on every Hydra search path.

A user's own ``conf/`` stays first, so their ``conf/lora/my-r32.yaml`` (or their own
``config.yaml``) wins; every group option they do not define is found in loracfg's
shipped ``conf/``. This is Hydra's documented way for a library to add configs.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LoracfgSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from loracfg.compiler.resources import shipped_conf_dir

        shipped = f"file://{shipped_conf_dir()}"
        # an app's own config dir comes as a bare path ('/repo/conf'), other entries as 'file:///repo/conf':
        # the checkout's conf/ is the shipped one, and looking it up twice doubled Hydra's file lookups
        if all(entry.path.removeprefix("file://") != shipped.removeprefix("file://")
               for entry in search_path.get_path()):
            search_path.append(provider="loracfg", path=shipped)
