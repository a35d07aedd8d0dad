"""Fail CI loudly when PostgreSQL is expected but unreachable, instead of letting tests skip."""

import os
import sys
import time

import environ
import psycopg

url = os.environ["DATABASE_URL"]
config = environ.Env.db_url_config(url)
for attempt in range(10):
    try:
        psycopg.connect(
            dbname=config["NAME"],
            user=config["USER"],
            password=config["PASSWORD"] or None,
            host=config["HOST"],
            port=config["PORT"] or 5432,
            connect_timeout=5,
        ).close()
        break
    except psycopg.OperationalError as error:
        last_error = error
        time.sleep(1)
else:
    sys.exit(f"PostgreSQL is not reachable at {url}: {last_error}")
