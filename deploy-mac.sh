#!/usr/bin/env bash
# Installs chunked-uploader as the launchd agent com.chunked-uploader.server of the current user,
# running the binaries in ./bin of the directory this script is in. See --help and docs/deploy.md.
#
# Written for the bash 3.2 that macOS ships as /bin/bash: no associative arrays, no mapfile, no
# ${var,,}, and no expansion of possibly empty arrays under set -u.
set -euo pipefail

label=com.chunked-uploader.server
# Log files over this size are rotated (copied to .1, .2, .3 and emptied) when the server starts.
log_rotate_bytes=$((10 * 1024 * 1024))

usage() {
  cat <<'EOF'
usage: deploy-mac.sh [--print | --run | --uninstall | --help]

Installs chunked-uploader as the launchd agent com.chunked-uploader.server of the current user
(~/Library/LaunchAgents/com.chunked-uploader.server.plist): it starts at login, and again when it
exits with an error. The install directory is the directory this script is in, a checkout of the
repository (the script reads .env with its scripts/dotenv.sh): it must hold bin/chunked-uploader and
the storage plugins (`make build`) and .env (`./init.sh`). The agent
runs `deploy-mac.sh --run` there; the server reads .env itself, so no setting and no secret is
copied into the plist.

  (no argument)  install or update the agent and (re)start it; run as the user the server should
                 run as, not with sudo
  --print        write the plist to stdout; installs and changes nothing (works on any system)
  --run          what the agent runs: waits until the /Volumes/<name> volumes holding the data
                 paths (LOCAL_STORAGE_PATH for the local backend, TEMP_STORAGE_PATH, the
                 directory of DATABASE_PATH) are mounted, rotates large log files, then execs
                 bin/chunked-uploader in the install directory
  --uninstall    stop the agent and remove its plist; keeps .env, the data and the logs
  --help         show this help

Logs: logs/chunked-uploader.out.log and logs/chunked-uploader.err.log in the install directory.
EOF
}

die() {
  printf 'deploy-mac.sh: %s\n' "$*" >&2
  exit 1
}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
install_dir=$script_dir
env_file=$install_dir/.env
host_bin=$install_dir/bin/chunked-uploader
log_dir=$install_dir/logs
out_log=$log_dir/chunked-uploader.out.log
err_log=$log_dir/chunked-uploader.err.log
plist_file=$HOME/Library/LaunchAgents/$label.plist

# trim, dotenv_get, setting, abs_path, ...: .env read as the server reads it.
[[ -f $install_dir/scripts/dotenv.sh ]] ||
  die "$install_dir/scripts/dotenv.sh not found: run this script from a checkout of the repository (it needs scripts/ beside it)"
# shellcheck source=scripts/dotenv.sh
. "$install_dir/scripts/dotenv.sh"

# Settings, from .env (relative paths resolved against the install directory).
server_host=''
server_port=''
# data_dirs: the directories the server writes, one per line.
data_dirs=''

load_settings() {
  local mode=${1:-} backend db
  setting STORAGE_BACKEND local "$mode"
  backend=$(printf '%s' "$REPLY" | tr '[:upper:]' '[:lower:]')
  data_dirs=''
  if [[ $backend == local ]]; then
    setting LOCAL_STORAGE_PATH ./uploads "$mode"
    abs_path "$REPLY"
    data_dirs=$REPLY$'\n'
  fi
  setting TEMP_STORAGE_PATH ./staging "$mode"
  abs_path "$REPLY"
  data_dirs+=$REPLY$'\n'
  setting DATABASE_PATH ./uploads.db "$mode"
  abs_path "$REPLY"
  db=${REPLY%/*}
  data_dirs+=${db:-/}$'\n'
  setting SERVER_HOST 0.0.0.0 "$mode"
  server_host=$REPLY
  setting SERVER_PORT 3000 "$mode"
  server_port=$REPLY
}

# xml TEXT: TEXT escaped for an XML string.
xml() {
  printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
}

plist() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by deploy-mac.sh in WorkingDirectory; redeploying overwrites it. No settings and no
     secrets here: the server reads .env from its working directory. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>$label</string>
	<key>ProgramArguments</key>
	<array>
		<string>/bin/bash</string>
		<string>$(xml "$install_dir/deploy-mac.sh")</string>
		<string>--run</string>
	</array>
	<key>WorkingDirectory</key>
	<string>$(xml "$install_dir")</string>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>10</integer>
	<key>ExitTimeOut</key>
	<integer>45</integer>
	<key>ProcessType</key>
	<string>Standard</string>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardOutPath</key>
	<string>$(xml "$out_log")</string>
	<key>StandardErrorPath</key>
	<string>$(xml "$err_log")</string>
</dict>
</plist>
EOF
}

# prepare: check what the agent needs.
prepare() {
  if [[ $install_dir == *$'\n'* ]]; then die "the install directory's name contains a line break"; fi
  [[ -f $env_file ]] || die "$env_file not found: run ./init.sh in $install_dir first (it writes .env with random secrets)"
  [[ -x $host_bin ]] || die "$host_bin not found: run make build in $install_dir first"
  load_settings
}

# volume_of PATH: the /Volumes/<name> that PATH is on, in REPLY; returns 1 when PATH is not under
# /Volumes.
volume_of() {
  local rest
  case $1 in
    /Volumes/?*) ;;
    *) return 1 ;;
  esac
  rest=${1#/Volumes/}
  REPLY=/Volumes/${rest%%/*}
}

# device PATH: the device number of the file system holding PATH.
device() {
  if [[ $(uname -s) == Darwin ]]; then stat -f %d "$1"; else stat -c %d "$1"; fi
}

# mounted VOLUME: VOLUME is a mount point (not a plain directory on the startup disk, which is
# what a volume's directory looks like before it is mounted or after it was ejected).
mounted() {
  [[ -d $1 ]] && [[ $(device "$1") != "$(device /Volumes)" ]]
}

# rotate_log FILE: copy a large FILE to FILE.1 (shifting .1 and .2 up) and empty it. launchd opens
# the log files in append mode before it starts us, so emptying in place is safe.
rotate_log() {
  local f=$1 size
  [[ -f $f ]] || return 0
  size=$(wc -c <"$f" | tr -d ' ')
  ((size > log_rotate_bytes)) || return 0
  [[ -f $f.2 ]] && mv -f "$f.2" "$f.3"
  [[ -f $f.1 ]] && mv -f "$f.1" "$f.2"
  cp -p "$f" "$f.1"
  : >"$f"
}

run_foreground() {
  [[ -x $host_bin ]] || die "$host_bin not found: run make build in $install_dir first"
  cd "$install_dir"
  rotate_log "$out_log"
  rotate_log "$err_log"
  load_settings env
  local dir vol waited
  while IFS= read -r dir; do
    [[ -n $dir ]] || continue
    volume_of "$dir" || continue
    vol=$REPLY
    waited=0
    until mounted "$vol"; do
      if ((waited % 60 == 0)); then
        echo "deploy-mac.sh: waiting for $vol (holds $dir) to be mounted" >&2
      fi
      sleep 5
      waited=$((waited + 5))
    done
    mkdir -p "$dir"
  done <<<"$data_dirs"
  # The server reads .env itself.
  exec "$host_bin"
}

domain() {
  printf 'gui/%s' "$(id -u)"
}

# stop_agent: boot the agent out and wait until launchd has forgotten it (bootstrap right after
# bootout fails while the old job is still stopping).
stop_agent() {
  local i
  launchctl print "$(domain)/$label" >/dev/null 2>&1 || return 0
  launchctl bootout "$(domain)/$label" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    launchctl print "$(domain)/$label" >/dev/null 2>&1 || return 0
    sleep 1
  done
  die "launchd still has $label 60 s after bootout"
}

install_agent() {
  [[ $(uname -s) == Darwin ]] || die "installing needs macOS (use deploy-linux.sh on Linux; --print works anywhere)"
  ((EUID != 0)) || die "run this as the user the server should run as, without sudo: it installs a launchd agent for that user"
  prepare

  local dir vol
  while IFS= read -r dir; do
    [[ -n $dir ]] || continue
    if volume_of "$dir" && ! mounted "$REPLY"; then
      vol=$REPLY
      echo "note: $vol is not mounted now; the agent waits for it before it starts the server"
      continue
    fi
    mkdir -p "$dir"
  done <<<"$data_dirs"
  # .env holds the secrets.
  chmod 600 "$env_file"
  (cd "$install_dir" && "$host_bin" -check-config >/dev/null) ||
    die "the configuration is invalid (see above); fix .env and run this script again"

  mkdir -p "$log_dir" "$(dirname "$plist_file")"
  local tmp
  tmp=$(mktemp "$plist_file.XXXXXX")
  plist >"$tmp"
  chmod 644 "$tmp"
  plutil -lint "$tmp" >/dev/null || die "the generated plist is invalid: $tmp"

  stop_agent
  mv -f "$tmp" "$plist_file"
  echo "wrote $plist_file"
  launchctl enable "$(domain)/$label" 2>/dev/null || true
  launchctl bootstrap "$(domain)" "$plist_file"

  local url i host=$server_host
  case $host in
    0.0.0.0 | '') host=127.0.0.1 ;;
    :: | '[::]') host='[::1]' ;;
    *:*) host="[$host]" ;;
  esac
  url=http://$host:$server_port/health
  for ((i = 0; i < 30; i++)); do
    if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then
      echo "running and healthy: $url"
      echo "logs: $log_dir"
      return 0
    fi
    sleep 1
  done
  echo "deploy-mac.sh: $url did not answer 200 within 30 s; last lines of $err_log:" >&2
  tail -n 20 "$err_log" >&2 2>/dev/null || true
  echo "state: launchctl print $(domain)/$label" >&2
  exit 1
}

uninstall_agent() {
  [[ $(uname -s) == Darwin ]] || die "--uninstall needs macOS"
  stop_agent
  if [[ -e $plist_file ]]; then
    rm -f "$plist_file"
    echo "removed $plist_file"
  fi
  echo "kept $env_file, the data and $log_dir"
}

(($# <= 1)) || die "one argument at most; see --help"
case ${1:-} in
  '') install_agent ;;
  --print) prepare; plist ;;
  --run) run_foreground ;;
  --uninstall) uninstall_agent ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
