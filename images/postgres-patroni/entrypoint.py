#!/opt/patroni/bin/python3
"""Entrypoint of the postgres:18 + Patroni image (images/postgres-patroni/Dockerfile).

  patroni-entrypoint [patroni] [patroni options]   write the config file, then exec
                                                   `patroni <options> $PATRONICTL_CONFIG_FILE`
  patroni-entrypoint --validate-config             leading options are patroni's (same as above)
  patroni-entrypoint <any other command>           exec'd as it is: postgres --version, sh, ...

Patroni reads most of its settings from PATRONI_* environment variables itself (the image sets
defaults for data_dir, bin_dir, listen addresses, .pgpass, user names and the Kubernetes labels; a
pod's env overrides them). This script writes only what has no such variable, or must be worked out
in the pod, to $PATRONICTL_CONFIG_FILE (default /tmp/patroni.yml), the file `patronictl` reads too,
so `kubectl exec <pod> -- patronictl list` works. A setting given in the environment is never
written: Patroni merges the environment over the file.

  Worked out in the pod (when its variable is unset):
    name                          PATRONI_NAME: the pod's hostname (its name in a StatefulSet)
    postgresql.connect_address    PATRONI_POSTGRESQL_CONNECT_ADDRESS: <pod IP>:<listen port>
    restapi.connect_address       PATRONI_RESTAPI_CONNECT_ADDRESS: <pod IP>:<listen port>
    kubernetes.namespace          PATRONI_KUBERNETES_NAMESPACE: the ServiceAccount's namespace
  The pod IP is PATRONI_KUBERNETES_POD_IP (give it from the downward API, status.podIP), else the
  address the hostname resolves to (a pod's /etc/hosts has it).

  Written from this image's own variables (removed from the environment before patroni starts):
    bootstrap.dcs                 the cluster's dynamic configuration. Patroni applies it once, when
                                  the cluster is first bootstrapped; later changes go through
                                  `patronictl edit-config` or PATCH /config of its REST API.
      PATRONI_DCS_TTL, _LOOP_WAIT, _RETRY_TIMEOUT (defaults 30, 10, 10; loop_wait + 2 * retry_timeout
        must not exceed ttl), _MAXIMUM_LAG_ON_FAILOVER, _MAXIMUM_LAG_ON_SYNCNODE (bytes),
        _PRIMARY_START_TIMEOUT, _PRIMARY_STOP_TIMEOUT (seconds), _SYNCHRONOUS_MODE (off|on|quorum),
        _SYNCHRONOUS_MODE_STRICT, _FAILSAFE_MODE, _CHECK_TIMELINE (true|false),
        _SYNCHRONOUS_NODE_COUNT (integer)
      PATRONI_DCS_POSTGRESQL_PARAMETERS   server parameters, a YAML or JSON mapping
                                  ({max_connections: 200, wal_keep_size: 1GB})
      always: postgresql.use_pg_rewind and use_slots (a failed primary rejoins with pg_rewind)
    postgresql.pg_hba             PATRONI_POSTGRESQL_PG_HBA: pg_hba.conf lines, one a line; default:
                                  local trust, scram-sha-256 over TCP for replication and all databases
    bootstrap.initdb              UTF8, data checksums
  An unknown PATRONI_DCS_* variable is an error, not ignored.

Required: PATRONI_SCOPE (the cluster's name), PATRONI_SUPERUSER_PASSWORD, PATRONI_REPLICATION_PASSWORD.
"""
import ipaddress
import os
import re
import socket
import sys

import yaml

PROG = 'patroni-entrypoint'
DEFAULT_CONFIG_FILE = '/tmp/patroni.yml'
SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'
DEFAULT_PG_HBA = [
    'local all all trust',
    'host replication all all scram-sha-256',
    'host all all all scram-sha-256',
]
REQUIRED = ('PATRONI_SCOPE', 'PATRONI_SUPERUSER_PASSWORD', 'PATRONI_REPLICATION_PASSWORD')


class ConfigError(Exception):
    pass


def integer(name, value):
    if not re.fullmatch(r'[0-9]+', value.strip()):
        raise ConfigError(f'{name}={value!r}: expected a whole number')
    return int(value)


def boolean(name, value):
    v = value.strip().lower()
    if v in ('true', 'on', 'yes', '1'):
        return True
    if v in ('false', 'off', 'no', '0'):
        return False
    raise ConfigError(f'{name}={value!r}: expected true or false')


def synchronous_mode(name, value):
    v = value.strip().lower()
    if v == 'quorum':
        return 'quorum'
    try:
        return boolean(name, v)
    except ConfigError:
        raise ConfigError(f'{name}={value!r}: expected off, on or quorum') from None


def mapping(name, value):
    try:
        parsed = yaml.safe_load(value) if value.strip() else {}
    except yaml.YAMLError as e:
        raise ConfigError(f'{name}: not YAML or JSON: {e}') from None
    if not isinstance(parsed, dict) or not all(isinstance(k, str) for k in parsed):
        raise ConfigError(f'{name}: expected a mapping of names to values, got {value!r}')
    for k, v in parsed.items():
        if isinstance(v, (dict, list)) or v is None:
            raise ConfigError(f'{name}: {k} must be a single value')
    return parsed


# PATRONI_DCS_<suffix> -> (key under bootstrap.dcs, parser)
DCS_KNOBS = {
    'TTL': ('ttl', integer),
    'LOOP_WAIT': ('loop_wait', integer),
    'RETRY_TIMEOUT': ('retry_timeout', integer),
    'MAXIMUM_LAG_ON_FAILOVER': ('maximum_lag_on_failover', integer),
    'MAXIMUM_LAG_ON_SYNCNODE': ('maximum_lag_on_syncnode', integer),
    'PRIMARY_START_TIMEOUT': ('primary_start_timeout', integer),
    'PRIMARY_STOP_TIMEOUT': ('primary_stop_timeout', integer),
    'SYNCHRONOUS_MODE': ('synchronous_mode', synchronous_mode),
    'SYNCHRONOUS_MODE_STRICT': ('synchronous_mode_strict', boolean),
    'SYNCHRONOUS_NODE_COUNT': ('synchronous_node_count', integer),
    'FAILSAFE_MODE': ('failsafe_mode', boolean),
    'CHECK_TIMELINE': ('check_timeline', boolean),
}
PARAMETERS_VAR = 'PATRONI_DCS_POSTGRESQL_PARAMETERS'
PG_HBA_VAR = 'PATRONI_POSTGRESQL_PG_HBA'


def dcs_settings(env):
    """bootstrap.dcs from the PATRONI_DCS_* variables (removed from env), over the defaults."""
    dcs = {'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10}
    parameters = {}
    for var in sorted(k for k in env if k.startswith('PATRONI_DCS_')):
        value = env.pop(var)
        if var == PARAMETERS_VAR:
            parameters = mapping(var, value)
            continue
        knob = DCS_KNOBS.get(var[len('PATRONI_DCS_'):])
        if knob is None:
            known = ', '.join(['PATRONI_DCS_' + s for s in DCS_KNOBS] + [PARAMETERS_VAR])
            raise ConfigError(f'{var} is not a setting of this image (known: {known})')
        key, parse = knob
        dcs[key] = parse(var, value)
    if dcs['loop_wait'] + 2 * dcs['retry_timeout'] > dcs['ttl']:
        raise ConfigError(
            f"loop_wait + 2 * retry_timeout ({dcs['loop_wait']} + 2 * {dcs['retry_timeout']}) must not "
            f"exceed ttl ({dcs['ttl']}): a leader could lose its lock while it retries"
        )
    dcs['postgresql'] = {'use_pg_rewind': True, 'use_slots': True}
    if parameters:
        dcs['postgresql']['parameters'] = parameters
    return dcs


def pg_hba(env):
    value = env.pop(PG_HBA_VAR, None)
    if value is None or not value.strip():
        return list(DEFAULT_PG_HBA)
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith('#')]


def port_of(listen, default):
    tail = listen.rsplit(':', 1)
    return tail[1] if len(tail) == 2 and tail[1].isdigit() else default


def pod_ip(env):
    ip = env.get('PATRONI_KUBERNETES_POD_IP', '').strip()
    how = 'PATRONI_KUBERNETES_POD_IP'
    if not ip:
        how = f'the address of hostname {socket.gethostname()}'
        try:
            ip = socket.gethostbyname(socket.gethostname())
        except OSError as e:
            raise ConfigError(f'no pod IP: set PATRONI_KUBERNETES_POD_IP (status.podIP) ({e})') from None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise ConfigError(f'{how} is not an IP address: {ip!r}') from None
    if addr.is_loopback or addr.is_unspecified:
        raise ConfigError(
            f'{how} is {ip}, which other members cannot reach: set PATRONI_KUBERNETES_POD_IP (status.podIP)'
        )
    return f'[{ip}]' if addr.version == 6 else ip


def build_config(env):
    """The YAML document for `env` (a copy of os.environ; this image's own variables are popped)."""
    missing = [v for v in REQUIRED if not env.get(v)]
    if missing:
        raise ConfigError(f'{", ".join(missing)} not set')
    config = {}
    if not env.get('PATRONI_NAME'):
        config['name'] = env.get('HOSTNAME') or socket.gethostname()
    ip = None

    def connect_address(var, listen_var, default_port):
        nonlocal ip
        if env.get(var):
            return None
        ip = ip or pod_ip(env)
        return f'{ip}:{port_of(env.get(listen_var, ""), default_port)}'

    restapi = connect_address('PATRONI_RESTAPI_CONNECT_ADDRESS', 'PATRONI_RESTAPI_LISTEN', '8008')
    if restapi:
        config['restapi'] = {'connect_address': restapi}
    kubernetes = {}
    if not env.get('PATRONI_KUBERNETES_NAMESPACE') and os.path.isfile(SERVICE_ACCOUNT_NAMESPACE):
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding='utf-8') as f:
            kubernetes['namespace'] = f.read().strip()
    # The section names Patroni's store even when every setting of it comes from the environment.
    config['kubernetes'] = kubernetes
    # The member's name as a server setting: a client of the primary Service (the services' writers)
    # can then tell which member answers (SELECT current_setting('bazar.member')); Patroni passes
    # parameters with a period in their name through as they are.
    member = env.get('PATRONI_NAME') or config['name']
    postgresql = {'pg_hba': pg_hba(env), 'parameters': {'bazar.member': member}}
    pg = connect_address('PATRONI_POSTGRESQL_CONNECT_ADDRESS', 'PATRONI_POSTGRESQL_LISTEN', '5432')
    if pg:
        postgresql['connect_address'] = pg
    config['postgresql'] = postgresql
    config['bootstrap'] = {
        'dcs': dcs_settings(env),
        'initdb': [{'encoding': 'UTF8'}, 'data-checksums'],
    }
    return config


def write_config(config, path):
    header = (
        f'# Written by {PROG} at start-up (images/postgres-patroni/entrypoint.py): the settings that\n'
        '# have no PATRONI_* variable. Patroni merges its PATRONI_* environment over this file.\n'
    )
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, exist_ok=True)
    part = f'{path}.part'
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(header)
        yaml.safe_dump(config, f, default_flow_style=False, sort_keys=False)
    os.replace(part, path)


def main(argv):
    if not argv or argv[0].startswith('-'):
        argv = ['patroni', *argv]
    # Anything else, or patroni given a configuration file of its own, runs as it is.
    if argv[0] != 'patroni' or any(not a.startswith('-') for a in argv[1:]):
        os.execvp(argv[0], argv)
    path = os.environ.get('PATRONICTL_CONFIG_FILE') or DEFAULT_CONFIG_FILE
    env = dict(os.environ)
    try:
        config = build_config(env)
        write_config(config, path)
    except (ConfigError, OSError) as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 1
    # This image's own variables are consumed: patroni sees only its own.
    for var in set(os.environ) - set(env):
        del os.environ[var]
    dcs = config['bootstrap']['dcs']
    print(
        f"{PROG}: wrote {path} (scope {os.environ['PATRONI_SCOPE']}, "
        f"name {os.environ.get('PATRONI_NAME') or config.get('name')}, ttl {dcs['ttl']}, "
        f"loop_wait {dcs['loop_wait']}, retry_timeout {dcs['retry_timeout']}, "
        f"synchronous_mode {dcs.get('synchronous_mode', False)}); exec patroni",
        file=sys.stderr,
        flush=True,
    )
    os.execvp('patroni', [*argv, path])
    return 1  # not reached


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
