"""Make Airflow's `admin` user (FAB auth manager) with the Admin role, or set its password if it
exists, from the environment variable AIRFLOW_ADMIN_PASSWORD.

docker-compose's `airflow-init` runs it after `airflow db migrate`. The password reaches it in
the environment, never on a command line (`airflow users create --password ...` would show it
to every process on the host). Idempotent: run it again to change the password.
"""

from __future__ import annotations

import os
import sys

USERNAME = "admin"


def main() -> int:
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if not password:
        print("AIRFLOW_ADMIN_PASSWORD is not set", file=sys.stderr)
        return 1
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        user = security.find_user(username=USERNAME)
        if user is None:
            made = security.add_user(username=USERNAME, first_name="Airflow", last_name="Admin",
                                     email="admin@newsroom.invalid",
                                     role=security.find_role("Admin"), password=password)
            if not made:
                print(f"could not create the Airflow user {USERNAME!r}", file=sys.stderr)
                return 1
            print(f"Airflow user {USERNAME!r} created")
        else:
            security.reset_password(user.id, password)
            print(f"Airflow user {USERNAME!r}: password set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
