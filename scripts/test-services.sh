#!/usr/bin/env bash
# Test services for CI and developers: Samba (SMB2/3) and an S3-compatible server (versitygw, or
# MinIO with S3_SERVER=minio), both on loopback. The SMB and S3 plugin tests need them:
#
#   scripts/test-services.sh start
#   . /tmp/chunked-uploader-svc/env.sh      # TEST_SMB_* and TEST_S3_* variables
#   go test ./...
#   scripts/test-services.sh stop
#
# usage: test-services.sh start|stop|env|status
#
# 'start' is idempotent: it installs only what is missing (samba with apt, the S3 server with
# 'go install') and starts only what is not running. It needs root for apt, useradd and
# smbpasswd. Everything else lives under $SVC_STATE.
set -euo pipefail

STATE=${SVC_STATE:-/tmp/chunked-uploader-svc}           # configs, data, logs, pid files, env.sh
TOOLS=${SVC_TOOLS:-$HOME/.cache/chunked-uploader-tools} # GOBIN for server binaries, kept between runs
SMB_PORT=${SMB_PORT:-4445}
SMB_USER=${SMB_USER:-smbtest}
SMB_PASS=${SMB_PASS:-smbpass123}
SMB_SHARE=${SMB_SHARE:-share}
S3_SERVER=${S3_SERVER:-versitygw} # versitygw | minio
S3_PORT=${S3_PORT:-7070}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-testkey}
S3_SECRET_KEY=${S3_SECRET_KEY:-testsecret123} # minio needs >= 8 characters
VERSITYGW_PKG=github.com/versity/versitygw/cmd/versitygw@v1.8.0
MINIO_PKG=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c # no semver tags: pin the pseudo-version

log() { echo "[services] $*" >&2; }

# alive PIDFILE: true if the pid in the file belongs to a running process. A killed process can
# linger as a zombie here (PID 1 reaps lazily), and kill -0 says it is alive: look at its state.
alive() {
  local p st
  [ -f "$1" ] || return 1
  p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] && [ "$st" != X ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local _
  for _ in $(seq 1 200); do
    port_open "$1" && return 0
    sleep 0.05
  done
  log "port $1 did not open"
  return 1
}

stop_pidfile() {
  local p _
  if ! alive "$1"; then
    rm -f "$1"
    return 0
  fi
  p=$(cat "$1")
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$1" || break
    sleep 0.05
  done
  if alive "$1"; then kill -9 "$p" 2>/dev/null || true; fi
  rm -f "$1"
}

install_samba() {
  command -v smbd >/dev/null && return 0
  log "installing samba"
  apt-get update -qq # cheap (~1.5 s) and needed on a fresh machine
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends samba >/dev/null
}

start_smb() {
  local d=$STATE/smb
  alive "$d/run/smbd.pid" && return 0
  install_samba
  mkdir -p "$d"/{run,lock,state,cache,private,log,share}
  id "$SMB_USER" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$SMB_USER"
  chown "$SMB_USER" "$d/share"
  cat >"$d/smb.conf" <<EOF
[global]
   server role = standalone server
   workgroup = WORKGROUP
   netbios name = UPLOADTEST
   interfaces = 127.0.0.1
   bind interfaces only = yes
   smb ports = $SMB_PORT
   disable netbios = yes
   server min protocol = SMB2_10
   server max protocol = SMB3
   pid directory = $d/run
   lock directory = $d/lock
   state directory = $d/state
   cache directory = $d/cache
   private dir = $d/private
   ncalrpc dir = $d/run/ncalrpc
   passdb backend = tdbsam:$d/private/passdb.tdb
   log file = $d/log/log.%m
   log level = 1
   map to guest = never
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes

[$SMB_SHARE]
   path = $d/share
   read only = no
   valid users = $SMB_USER
   create mask = 0644
   directory mask = 0755
EOF
  printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | smbpasswd -c "$d/smb.conf" -s -a "$SMB_USER" >/dev/null 2>&1
  # smbd writes $d/run/smbd.pid itself. NEVER add --no-process-group: smbd would then share our
  # process group and on SIGTERM signal the whole group, killing this script and its caller.
  nohup smbd --foreground --debug-stdout -s "$d/smb.conf" </dev/null >"$d/log/smbd.out" 2>&1 &
  wait_port "$SMB_PORT"
  log "smbd up on 127.0.0.1:$SMB_PORT (pid $(cat "$d/run/smbd.pid" 2>/dev/null || echo '?'))"
}

install_s3() {
  local bin=$TOOLS/$S3_SERVER pkg
  [ -x "$bin" ] && return 0
  case $S3_SERVER in
    versitygw) pkg=$VERSITYGW_PKG ;;
    minio) pkg=$MINIO_PKG ;;
    *)
      log "unknown S3_SERVER=$S3_SERVER (versitygw or minio)"
      return 1
      ;;
  esac
  log "building $pkg (cold: versitygw ~1 min, minio ~2 min on 2 cores)"
  mkdir -p "$TOOLS" "$STATE"
  if ! GOBIN=$TOOLS CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off \
    go install -trimpath -ldflags='-s -w' "$pkg" >"$STATE/install-$S3_SERVER.log" 2>&1; then
    tail -n 20 "$STATE/install-$S3_SERVER.log" >&2
    log "building $pkg failed (log: $STATE/install-$S3_SERVER.log)"
    return 1
  fi
}

start_s3() {
  local d=$STATE/s3
  alive "$d/server.pid" && return 0
  install_s3
  mkdir -p "$d/data"
  case $S3_SERVER in
    versitygw)
      ROOT_ACCESS_KEY=$S3_ACCESS_KEY ROOT_SECRET_KEY=$S3_SECRET_KEY \
        nohup "$TOOLS/versitygw" --port "127.0.0.1:$S3_PORT" --quiet posix "$d/data" \
        </dev/null >"$d/server.log" 2>&1 &
      ;;
    minio)
      MINIO_ROOT_USER=$S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$S3_SECRET_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
        nohup "$TOOLS/minio" server "$d/data" --address "127.0.0.1:$S3_PORT" --quiet \
        </dev/null >"$d/server.log" 2>&1 &
      ;;
  esac
  echo $! >"$d/server.pid"
  wait_port "$S3_PORT"
  log "$S3_SERVER up on 127.0.0.1:$S3_PORT (pid $(cat "$d/server.pid"))"
}

print_env() {
  cat <<EOF
export TEST_SMB_ADDR=127.0.0.1:$SMB_PORT TEST_SMB_USER=$SMB_USER TEST_SMB_PASS=$SMB_PASS TEST_SMB_SHARE=$SMB_SHARE
export TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY TEST_S3_SECRET_KEY=$S3_SECRET_KEY TEST_S3_REGION=us-east-1
EOF
}

case ${1:-start} in
  start)
    mkdir -p "$STATE"
    start_smb
    start_s3
    print_env >"$STATE/env.sh"
    log "env in $STATE/env.sh"
    ;;
  stop)
    stop_pidfile "$STATE/s3/server.pid"
    stop_pidfile "$STATE/smb/run/smbd.pid"
    # smbd spawns samba-dcerpcd on demand (share enumeration); it is re-parented to init and
    # outlives smbd.
    stop_pidfile "$STATE/smb/run/samba-dcerpcd.pid"
    log "stopped"
    ;;
  env) print_env ;;
  status)
    rc=0
    for f in "$STATE/smb/run/smbd.pid" "$STATE/s3/server.pid"; do
      if alive "$f"; then echo "up   $f"; else echo "down $f"; rc=1; fi
    done
    exit $rc
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
