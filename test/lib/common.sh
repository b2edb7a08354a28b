# Shared set-up for the README commands: install what is missing, build, install.
# Sourced by test/run.sh, demo/run.sh and test/bench/run.sh.

PG_MAJOR=${PG_MAJOR:-15}
# a UTF-8 locale for the throwaway clusters, also where none is set (CI)
if [ -z "${LC_ALL:-}" ] && { [ -z "${LANG:-}" ] || [ "${LANG}" = C ] || [ "${LANG}" = POSIX ]; }; then
    export LANG=C.UTF-8
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages the project needs; installed only when something is missing.
ensure_packages() {
    local need=()
    local pkgs=(make gcc libc6-dev "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
                "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl postgresql-common
                "$@")
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing Debian packages: ${need[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
}

# Build warning-free (-Werror) and install into the PostgreSQL of PG_MAJOR.
build_and_install() {
    local pg_config="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
    echo "== building customer_account"
    make -s clean PG_CONFIG="$pg_config" >/dev/null
    make -s PG_CONFIG="$pg_config" EXTRA_CFLAGS="-Werror ${EXTRA_CFLAGS:-}"
    $SUDO make -s install PG_CONFIG="$pg_config" >/dev/null
}

# Run a command in a throwaway cluster: pg_virtualenv -t keeps the cluster
# in a temporary directory (as root too, where it would otherwise be the
# one /etc/postgresql/<v>/regress), and the port is reserved by a lock file
# held while the cluster runs, so that runs started at the same moment
# never meet.  Arguments: pg_virtualenv options, then the command.
run_in_cluster() {
    local port
    # below the kernel's ephemeral ports (32768-60999 by default): a port in
    # that range can be the local end of a client's connection (a test's psql
    # to the outer cluster), and a cluster cannot listen on it then
    for port in $(seq 29330 29429); do
        exec {CA_PORT_LOCK}>"${TMPDIR:-/tmp}/customer_account-port-$port.lock"
        if flock -n "$CA_PORT_LOCK" && ! port_in_use "$port"; then
            local status=0
            PGPORT=$port pg_virtualenv -t -v "$PG_MAJOR" "$@" || status=$?
            exec {CA_PORT_LOCK}>&-
            return $status
        fi
        exec {CA_PORT_LOCK}>&-
    done
    echo "no free port for a throwaway cluster in 29330-29429" >&2
    return 1
}

# Is something listening on the port (TCP or a Unix socket)?
port_in_use() {
    [ -e "/var/run/postgresql/.s.PGSQL.$1" ] && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
