#!/bin/sh
# Installs (if needed) and starts a local PostgreSQL cluster, creates a role
# and a database for Starling's storage tests, and prints the URI to put in
# STARLING_TEST_POSTGRES on stdout. Everything else goes to stderr, so CI can
# do: export STARLING_TEST_POSTGRES="$(.ci/postgres.sh)"
# Safe to run again: each step checks before it acts. Runs as root on Debian 12.
set -eu

# Keep stdout for the URI alone. Every command that may leave a daemon behind (apt-get's postinst,
# pg_createcluster, pg_ctlcluster) runs with fd 3 closed: a server that inherits it holds the caller's
# $(...) open forever, which is how a CI run once hung for 90 minutes after "ready".
exec 3>&1 1>&2

ROLE=starling_test
PASSWORD=starling_test
DB=starling_test

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
	echo "postgres.sh: installing postgresql" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends postgresql 3>&- </dev/null
fi

VERSION=$(ls /usr/lib/postgresql | sort -n | tail -n 1)

# Some images install the binaries without creating the default cluster.
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$VERSION main"; then
	echo "postgres.sh: creating cluster $VERSION/main" >&2
	pg_createcluster "$VERSION" main 3>&- </dev/null
fi

if ! pg_ctlcluster "$VERSION" main status >/dev/null 2>&1; then
	echo "postgres.sh: starting cluster $VERSION/main" >&2
	pg_ctlcluster "$VERSION" main start 3>&- </dev/null
fi

PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $3}')

i=0
until pg_isready -q -h 127.0.0.1 -p "$PORT"; do
	i=$((i + 1))
	if [ "$i" -ge 30 ]; then
		echo "postgres.sh: cluster on port $PORT not ready after 30 s" >&2
		exit 1
	fi
	sleep 1
done

psql_admin() {
	runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qtAX "$@"
}

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
	echo "postgres.sh: creating role $ROLE" >&2
	psql_admin -c "CREATE ROLE $ROLE LOGIN"
fi
# Set every time, so a role left by an older run still matches the URI.
psql_admin -c "ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"

if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
	echo "postgres.sh: creating database $DB" >&2
	psql_admin -c "CREATE DATABASE $DB OWNER $ROLE"
fi

echo "postgres.sh: PostgreSQL $VERSION ready on 127.0.0.1:$PORT" >&2
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB?sslmode=disable" >&3
