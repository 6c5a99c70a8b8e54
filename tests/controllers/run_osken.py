"""Runs os-ken applications, as osken-manager did: run_osken.py PORT APP.py ...

os-ken 4.x on PyPI no longer ships osken-manager; this is its main loop:
parse the configuration (OpenFlow listener on 127.0.0.1:PORT), load the
applications, start them and wait.
"""

import sys

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.lib import hub

hub.patch(thread=False)


def main():
    port, apps = sys.argv[1], sys.argv[2:]
    cfg.CONF(args=["--ofp-tcp-listen-port", port, "--ofp-listen-host", "127.0.0.1"],
             project="os_ken")
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps(apps)
    services = mgr.instantiate_apps(**mgr.create_contexts())
    print(f"listening on 127.0.0.1:{port}", flush=True)
    try:
        hub.joinall(services)
    finally:
        mgr.close()


if __name__ == "__main__":
    main()
