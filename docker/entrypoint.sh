#!/bin/sh
# `migrate`: apply migrations and (re)create the beat schedule, then exit. Anything else runs as given.
set -e

if [ "$1" = "migrate" ]; then
    shift
    python manage.py migrate --noinput "$@"
    exec python manage.py setup_periodic_tasks
fi

exec "$@"
