#!/usr/bin/env bash
# Installs chunked-uploader as a hardened systemd service that runs the binaries in ./bin of the
# directory this script is in, as the unprivileged system user chunked-uploader. See --help and
# docs/deploy.md.
set -euo pipefail

readonly service=chunked-uploader
readonly service_user=chunked-uploader
readonly unit_file=/etc/systemd/system/$service.service

usage() {
  cat <<'EOF'
usage: deploy-linux.sh [--print | --run | --uninstall | --help]

Installs chunked-uploader as the systemd service chunked-uploader.service. The install directory
is the directory this script is in, a checkout of the repository (the script reads .env with its
scripts/dotenv.sh): it must hold bin/chunked-uploader and the storage plugins (`make build`) and
.env (`./init.sh`). The service runs bin/chunked-uploader directly, in the
install directory, as the unprivileged system user chunked-uploader; the server reads .env from
there itself.

  (no argument)  install or update the service and (re)start it; needs root (sudo) and a running
                 systemd. Creates the user chunked-uploader if it is missing, creates the data
                 directories (LOCAL_STORAGE_PATH for the local backend, TEMP_STORAGE_PATH, the
                 directory of DATABASE_PATH) and gives them to that user, makes .env readable by
                 its group, checks the configuration as that user, writes
                 /etc/systemd/system/chunked-uploader.service, then daemon-reload, enable,
                 restart, status. If a step up to enable fails, every change made so far is
                 undone.
  --print        write the unit to stdout; installs and changes nothing, needs no root
  --run          run the server in the foreground from the install directory, as the current
                 user (manual mode: the service does not use it). Waits until the mounts in
                 /etc/fstab that hold the data paths are mounted, then execs bin/chunked-uploader
  --uninstall    stop and disable the service and remove its unit; keeps the user, .env and data
  --help         show this help

Logs go to the journal:  journalctl -u chunked-uploader -f
Extra settings for the unit (another writable path for a custom plugin, a different UMask) go
in a drop-in, which redeploying keeps:  sudo systemctl edit chunked-uploader
EOF
}

die() {
  printf 'deploy-linux.sh: %s\n' "$*" >&2
  exit 1
}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
install_dir=$script_dir
env_file=$install_dir/.env
host_bin=$install_dir/bin/chunked-uploader

# trim, dotenv_get, setting, abs_path, ...: .env read as the server reads it.
[[ -f $install_dir/scripts/dotenv.sh ]] ||
  die "$install_dir/scripts/dotenv.sh not found: run this script from a checkout of the repository (it needs scripts/ beside it)"
# shellcheck source=scripts/dotenv.sh
. "$install_dir/scripts/dotenv.sh"

# is_within PATH DIR: PATH is DIR or below it.
is_within() {
  [[ $1 == "$2" || $2 == / || $1 == "$2"/* ]]
}

# Settings that decide the unit, from .env (relative paths resolved against the install dir).
backend=''
local_path=''
temp_path=''
db_path=''
db_dir=''
server_host=''
server_port=''
# data_dirs: the directories the service writes (ReadWritePaths=, RequiresMountsFor=, chown).
data_dirs=()

load_settings() {
  local mode=${1:-}
  setting STORAGE_BACKEND local "$mode"
  backend=$(tr '[:upper:]' '[:lower:]' <<<"$REPLY")
  setting LOCAL_STORAGE_PATH ./uploads "$mode"
  abs_path "$REPLY"
  local_path=$REPLY
  setting TEMP_STORAGE_PATH ./staging "$mode"
  abs_path "$REPLY"
  temp_path=$REPLY
  setting DATABASE_PATH ./uploads.db "$mode"
  abs_path "$REPLY"
  db_path=$REPLY
  db_dir=${db_path%/*}
  db_dir=${db_dir:-/}
  setting SERVER_HOST 0.0.0.0 "$mode"
  server_host=$REPLY
  setting SERVER_PORT 3000 "$mode"
  server_port=$REPLY

  data_dirs=()
  # LOCAL_STORAGE_PATH is used by the local plugin only.
  if [[ $backend == local ]]; then data_dirs+=("$local_path"); fi
  data_dirs+=("$temp_path" "$db_dir")
}

# check_unit_path NAME PATH: refuse paths a unit file cannot carry without quoting rules of its own
# (white space, quotes, backslashes, %, $, ;, control characters).
check_unit_path() {
  if [[ $2 =~ [[:space:][:cntrl:]\"\'\\%\$\;] ]]; then
    die "$1 ($2) contains white space or one of \" ' \\ % \$ ; which this script does not put in a systemd unit; use a plain path"
  fi
}

# check_data_dir NAME PATH: refuse a data path the service user must not own or that the unit's
# sandbox would hide.
check_data_dir() {
  local name=$1 dir=$2 sys example=$install_dir/data
  check_unit_path "$name" "$dir"
  if is_within "$install_dir" "$dir"; then
    [[ $name == DATABASE_PATH* ]] && example=DATABASE_PATH=./data/uploads.db
    die "$name: $dir is the install directory $install_dir or one of its parents. The service user must not be able to write there (it holds the binaries, .env and this script, which root runs): use a directory of its own, e.g. $example, and move the existing data there first"
  fi
  if is_within "$dir" "$install_dir/bin"; then
    die "$name: $dir is inside $install_dir/bin"
  fi
  for sys in / /bin /boot /dev /etc /home /lib /lib32 /lib64 /media /mnt /opt /proc /root /run /sbin /srv /sys /usr /var /var/lib; do
    [[ $dir == "$sys" ]] && die "$name: $dir is a system directory; use a directory of its own below it"
  done
  if is_within "$dir" /dev || is_within "$dir" /proc || is_within "$dir" /sys ||
    { is_within "$dir" /run && ! is_within "$dir" /run/media; }; then
    die "$name: $dir is on a virtual or memory file system (/dev, /proc, /sys, /run) that the service's sandbox replaces or a reboot empties; use a persistent directory such as /var/lib/$service"
  fi
  if is_within "$dir" /tmp || is_within "$dir" /var/tmp; then
    die "$name: $dir is in /tmp or /var/tmp, which the service sees as an empty private directory (PrivateTmp=yes) and tmp cleaners empty; staged parts and uploads must survive, so use a persistent directory such as /var/lib/$service"
  fi
}

# fstab_mount_for PATH: the mount point from /etc/fstab that holds PATH (the longest one above it,
# other than /), in REPLY; returns 1 when there is none.
fstab_mount_for() {
  local path=$1 spec mnt rest best=''
  [[ -r /etc/fstab ]] || return 1
  while read -r spec mnt rest; do
    [[ -z $spec || $spec == '#'* || -z $mnt || $mnt != /* ]] && continue
    mnt=${mnt//\\040/ }
    [[ $mnt == / ]] && continue
    if is_within "$path" "$mnt" && ((${#mnt} > ${#best})); then best=$mnt; fi
  done </etc/fstab
  REPLY=$best
  [[ -n $best ]]
}

unit() {
  local protect_home=yes dir rw='' mounts=$install_dir caps=''
  for dir in "$install_dir" "${data_dirs[@]}"; do
    # ProtectHome=yes would hide a path under /home, /root or /run/user; read-only keeps it
    # visible, and ReadWritePaths= makes the data directories in it writable again.
    if is_within "$dir" /home || is_within "$dir" /root || is_within "$dir" /run/user; then
      protect_home=read-only
    fi
  done
  for dir in "${data_dirs[@]}"; do
    [[ " $rw " == *" $dir "* ]] || rw+=${rw:+ }$dir
  done
  mounts+=" $rw"
  if [[ $server_port =~ ^[0-9]+$ ]] && ((10#$server_port < 1024)); then
    caps=CAP_NET_BIND_SERVICE
  fi
  cat <<EOF
# chunked-uploader.service, written by $install_dir/deploy-linux.sh; redeploying overwrites it.
# Local changes belong in a drop-in:  sudo systemctl edit chunked-uploader
[Unit]
Description=chunked-uploader resumable chunked upload server
Documentation=file://$install_dir/docs/deploy.md
After=network-online.target
Wants=network-online.target
# Waits for (and requires) the mounts that hold the program and the data, e.g. a NAS share.
RequiresMountsFor=$mounts

[Service]
Type=exec
User=$service_user
Group=$service_user
WorkingDirectory=$install_dir
# The server reads .env from its working directory itself (no EnvironmentFile=: one parser for
# the file, and the secrets stay out of the process environment).
ExecStart=$host_bin
Restart=on-failure
RestartSec=5
# Exit status 2 is an invalid configuration: restarting cannot fix it.
RestartPreventExitStatus=2
# SIGTERM goes to the server only; it drains requests for up to 30 s and stops its plugin
# itself. Whatever is left after TimeoutStopSec gets SIGKILL.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=45
StandardOutput=journal
StandardError=journal
SyslogIdentifier=$service
UMask=0077

# Sandbox. The storage plugin is a child process that talks to the server over a Unix socket
# in the private /tmp.
NoNewPrivileges=yes
CapabilityBoundingSet=$caps
AmbientCapabilities=$caps
ProtectSystem=strict
ReadWritePaths=$rw
ProtectHome=$protect_home
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
PrivateMounts=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF
}

# prepare: load and check the settings for the unit.
prepare() {
  check_unit_path "install directory" "$install_dir"
  [[ -f $env_file ]] || die "$env_file not found: run ./init.sh in $install_dir first (it writes .env with random secrets)"
  [[ -x $host_bin ]] || die "$host_bin not found: run make build in $install_dir first"
  load_settings
  [[ $backend =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "STORAGE_BACKEND=$backend is not a plugin name"
  local plugin_dir
  setting PLUGIN_DIR "$install_dir/bin"
  abs_path "$REPLY"
  plugin_dir=$REPLY
  [[ -x $plugin_dir/chunked-uploader-plugin-$backend ]] ||
    die "storage plugin $plugin_dir/chunked-uploader-plugin-$backend not found: run make build (or set PLUGIN_DIR)"
  [[ $backend == local ]] && check_data_dir LOCAL_STORAGE_PATH "$local_path"
  check_data_dir TEMP_STORAGE_PATH "$temp_path"
  check_data_dir "DATABASE_PATH's directory" "$db_dir"
  return 0
}

# as_service_user CMD...: run CMD as the service user, in the install directory, with an
# environment as empty as the service's (so .env decides, as it will for the service).
as_service_user() {
  (cd "$install_dir" && runuser -u "$service_user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@")
}

# health_url: where the server answers on this machine.
health_url() {
  local host=$server_host
  case $host in
    0.0.0.0 | '') host=127.0.0.1 ;;
    :: | '[::]') host='[::1]' ;;
    *:*) host="[$host]" ;;
  esac
  printf 'http://%s:%s/health' "$host" "$server_port"
}

# The changes an install made so far, undone in reverse order when it fails (see rollback):
# undo_kind[i] is user, rmdirs, owner, mode, group, file or unit; undo_path[i] and undo_arg[i] are
# its operands.
undo_kind=()
undo_path=()
undo_arg=()
installing=0

# will_undo KIND PATH ARG: record a change for rollback.
will_undo() {
  undo_kind+=("$1")
  undo_path+=("$2")
  undo_arg+=("$3")
}

# rollback: the EXIT trap of an install. Unless the install got past the point of no return,
# it undoes what was recorded, newest first: unit file, owners, modes and groups, created
# directories (only while empty), the created user.
rollback() {
  local status=$? i kind path arg d
  ((installing)) || return 0
  installing=0
  printf 'deploy-linux.sh: the install failed; undoing its changes\n' >&2
  for ((i = ${#undo_kind[@]} - 1; i >= 0; i--)); do
    kind=${undo_kind[i]} path=${undo_path[i]} arg=${undo_arg[i]}
    case $kind in
      unit)
        if [[ -n $arg ]]; then
          mv -f -- "$arg" "$path" && echo "  restored the previous $path" >&2
        else
          rm -f -- "$path" && echo "  removed $path" >&2
        fi
        systemctl daemon-reload >/dev/null 2>&1 || true
        ;;
      owner) chown -R -- "$arg" "$path" && echo "  gave $path back to $arg" >&2 ;;
      mode) chmod -- "$arg" "$path" || true ;;
      group) chgrp -- "$arg" "$path" || true ;;
      file) rm -f -- "$path" ;;
      rmdirs)
        # path was created by this install, and arg is the topmost directory it created.
        d=$path
        while rmdir -- "$d" 2>/dev/null; do
          [[ $d == "$arg" ]] && break
          d=${d%/*}
        done
        if [[ -e $arg ]]; then echo "  kept $arg: it is not empty" >&2; else echo "  removed $arg" >&2; fi
        ;;
      user)
        userdel "$path" >/dev/null 2>&1 || echo "  could not remove the user $path" >&2
        if getent group "$path" >/dev/null; then groupdel "$path" >/dev/null 2>&1 || true; fi
        id -u "$path" >/dev/null 2>&1 || echo "  removed the user $path" >&2
        ;;
    esac
  done
  return "$status"
}

# first_missing PATH: the topmost directory of PATH that does not exist, in REPLY ('' when PATH
# exists).
first_missing() {
  local p=$1
  REPLY=''
  while [[ -n $p && ! -e $p ]]; do
    REPLY=$p
    p=${p%/*}
  done
}

# require_systemd: refuse, before changing anything, to install a service where systemd is not
# the running init (a container, a chroot, WSL without systemd): daemon-reload would fail after
# the user, the directories and the unit were made.
require_systemd() {
  command -v systemctl >/dev/null || die "systemctl not found: this script needs systemd"
  local state
  state=$(systemctl is-system-running 2>/dev/null) || true
  case $state in
    '' | offline | unknown)
      die "systemd is not running on this machine (systemctl is-system-running: ${state:-no answer}), so no service can be installed; nothing was changed. Run the server in the foreground with $0 --run, or under another supervisor"
      ;;
  esac
}

install_service() {
  ((EUID == 0)) || die "installing the service needs root: sudo $0   (or $0 --print to see the unit)"
  require_systemd
  prepare

  installing=1
  trap rollback EXIT
  if ! id -u "$service_user" >/dev/null 2>&1; then
    echo "creating system user $service_user"
    will_undo user "$service_user" ''
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$service_user"
  fi
  local group dir f
  group=$(id -gn "$service_user")

  for dir in "${data_dirs[@]}"; do
    first_missing "$dir"
    if [[ -n $REPLY ]]; then
      will_undo rmdirs "$dir" "$REPLY"
      mkdir -p -- "$dir"
    fi
    if [[ $(stat -c %U -- "$dir") != "$service_user" ]]; then
      echo "giving $dir to $service_user"
      will_undo owner "$dir" "$(stat -c %u:%g -- "$dir")"
      chown -R -- "$service_user:$group" "$dir" ||
        echo "warning: could not chown $dir (a network mount with fixed ownership?); checking that $service_user can write it" >&2
    fi
    will_undo mode "$dir" "$(stat -c %a -- "$dir")"
    chmod 0700 -- "$dir" 2>/dev/null || true
  done
  # The existing database file, if DATABASE_PATH's directory was already the user's.
  for f in "$db_path"*; do
    [[ -e $f ]] || continue
    will_undo owner "$f" "$(stat -c %u:%g -- "$f")"
    chown -- "$service_user:$group" "$f"
  done

  # .env holds the secrets: readable by its owner and the service's group only.
  will_undo group "$env_file" "$(stat -c %g -- "$env_file")"
  will_undo mode "$env_file" "$(stat -c %a -- "$env_file")"
  chgrp -- "$group" "$env_file"
  chmod 0640 -- "$env_file"

  # Preflight as the service user: what systemd would hit at start.
  as_service_user test -r "$env_file" ||
    die "$service_user cannot read $env_file: it needs search permission on $install_dir and every directory above it (install under /opt or /srv, not in a private home directory)"
  as_service_user test -x "$host_bin" || die "$service_user cannot run $host_bin (permissions of $install_dir/bin?)"
  for dir in "${data_dirs[@]}"; do
    as_service_user test -w "$dir" -a -x "$dir" || die "$service_user cannot write $dir"
  done
  as_service_user "$host_bin" -check-config >/dev/null ||
    die "the configuration is invalid (see above); fix .env and run this script again"

  local tmp backup=''
  tmp=$(mktemp "$unit_file.XXXXXX")
  will_undo file "$tmp" ''
  unit >"$tmp"
  chmod 0644 "$tmp"
  if [[ -e $unit_file ]]; then
    backup=$(mktemp "$unit_file.previous.XXXXXX")
    will_undo file "$backup" ''
    cp -p -- "$unit_file" "$backup"
  fi
  will_undo unit "$unit_file" "$backup"
  mv -f -- "$tmp" "$unit_file"
  echo "wrote $unit_file"

  systemctl daemon-reload
  systemctl enable "$service.service"
  # The service is installed: from here on a failure is reported, not undone.
  installing=0
  [[ -z $backup ]] || rm -f -- "$backup"
  # restart, not start: picks up a new binary, unit or .env when the service was running.
  systemctl restart "$service.service"

  local url i
  url=$(health_url)
  if command -v curl >/dev/null; then
    for ((i = 0; i < 30; i++)); do
      systemctl is-active --quiet "$service.service" || break
      if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then
        echo "healthy: $url"
        break
      fi
      sleep 1
    done
  fi
  systemctl --no-pager --lines=20 status "$service.service" || true
  systemctl is-active --quiet "$service.service" ||
    die "$service is not running; see: journalctl -u $service -e"
  echo "installed. Logs: journalctl -u $service -f"
}

uninstall_service() {
  ((EUID == 0)) || die "--uninstall needs root: sudo $0 --uninstall"
  if [[ -e $unit_file ]]; then
    systemctl disable --now "$service.service" || true
    rm -f -- "$unit_file"
    systemctl daemon-reload
    echo "removed $unit_file"
  else
    echo "$unit_file does not exist; nothing to do"
  fi
  echo "kept the user $service_user, $env_file and the data directories"
}

# run_foreground: the manual --run mode.
run_foreground() {
  [[ -x $host_bin ]] || die "$host_bin not found: run make build in $install_dir first"
  cd "$install_dir"
  load_settings env
  local dir mnt waited
  for dir in "${data_dirs[@]}"; do
    fstab_mount_for "$dir" || continue
    mnt=$REPLY
    waited=0
    until mountpoint -q -- "$mnt"; do
      if ((waited % 60 == 0)); then
        echo "deploy-linux.sh: waiting for $mnt (from /etc/fstab, holds $dir) to be mounted" >&2
      fi
      sleep 5
      waited=$((waited + 5))
    done
  done
  # The server reads .env itself.
  exec "$host_bin"
}

(($# <= 1)) || die "one argument at most; see --help"
case ${1:-} in
  '') install_service ;;
  --print) prepare; unit ;;
  --run) run_foreground ;;
  --uninstall) uninstall_service ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
