# shellcheck shell=bash
# scripts/dotenv.sh: reading .env in bash, for deploy-linux.sh and deploy-mac.sh, which source it.
# It parses .env the way the server and the CLI do (host/dotenv, docs/configuration.md ".env
# format"): a change there must be made here too. The file is read, never sourced.
#
# Written for the bash 3.2 that macOS ships as /bin/bash: no associative arrays, no mapfile, no
# ${var,,}, and no expansion of possibly empty arrays under set -u.
#
# The sourcing script sets env_file (the .env path) and install_dir (the directory relative paths
# are resolved against: the server's working directory), and defines die MESSAGE (print, exit 1).
# Results are returned in REPLY.
# shellcheck disable=SC2154 # env_file and install_dir are the sourcing script's

# trim VALUE: VALUE without leading and trailing white space, in REPLY.
trim() {
  REPLY=$1
  REPLY=${REPLY#"${REPLY%%[![:space:]]*}"}
  REPLY=${REPLY%"${REPLY##*[![:space:]]}"}
}

# unescape_double VALUE: the server's unescaping of a double-quoted .env value (\n, \" and \\),
# in REPLY.
unescape_double() {
  local s=$1 out='' c
  while [[ -n $s ]]; do
    c=${s:0:1}
    if [[ $c == "\\" && ${#s} -ge 2 ]]; then
      case ${s:1:1} in
        n) out+=$'\n'; s=${s:2}; continue ;;
        '"') out+='"'; s=${s:2}; continue ;;
        "\\") out+="\\"; s=${s:2}; continue ;;
      esac
    fi
    out+=$c
    s=${s:1}
  done
  REPLY=$out
}

# dotenv_get KEY: sets REPLY to the value of KEY in .env and returns 0, or returns 1 when .env does
# not set it. Parses .env the way the server does (host/dotenv): KEY=VALUE lines, an
# optional "export " prefix, # comment lines, single quotes literal, double quotes with \n \" \\,
# " #" ending an unquoted value, no variable expansion; a malformed line anywhere is an error, as
# for the server. The file is read, never sourced.
dotenv_get() {
  local want=$1 line key value last='' found=1 n=0
  REPLY=''
  [[ -f $env_file ]] || return 1
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    trim "$line"
    line=$REPLY
    [[ -z $line || $line == '#'* ]] && continue
    line=${line#export }
    [[ $line == *=* ]] || die "$env_file line $n: expected KEY=VALUE"
    trim "${line%%=*}"
    key=$REPLY
    [[ -n $key && $key != *[[:space:]\"\']* ]] || die "$env_file line $n: expected KEY=VALUE"
    trim "${line#*=}"
    value=$REPLY
    if [[ ${#value} -ge 2 && $value == \'*\' ]]; then
      value=${value:1:${#value}-2}
    elif [[ ${#value} -ge 2 && $value == \"*\" ]]; then
      unescape_double "${value:1:${#value}-2}"
      value=$REPLY
    elif [[ $value == [\'\"]* ]]; then
      die "$env_file line $n: unterminated quote"
    elif [[ $value == *' #'* ]]; then
      trim "${value%%' #'*}"
      value=$REPLY
    fi
    [[ $key == "$want" ]] || continue
    found=0
    last=$value
  done <"$env_file"
  if ((found == 0)); then REPLY=$last; fi
  return "$found"
}

# setting KEY DEFAULT [ENV]: the value of KEY in REPLY, as the server would see it: from .env, with
# an empty value meaning DEFAULT. With ENV=env, a variable set in this script's environment wins
# over .env (the --run mode, whose environment the server inherits); a service manager (systemd,
# launchd) does not pass the environment of whoever ran the script, so a unit or plist is built
# from .env alone.
setting() {
  local key=$1 def=$2 from_env=${3:-}
  if [[ $from_env == env && -n ${!key+set} ]]; then
    trim "${!key}"
  elif dotenv_get "$key"; then
    trim "$REPLY"
  else
    REPLY=''
  fi
  if [[ -z $REPLY ]]; then REPLY=$def; fi
}

# clean_path ABSOLUTE: the path without ".", ".." and doubled slashes (like Go's filepath.Clean),
# in REPLY.
clean_path() {
  local rest=${1#/} seg out=''
  while [[ -n $rest ]]; do
    seg=${rest%%/*}
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=''; fi
    case $seg in
      '' | .) ;;
      ..) out=${out%/*} ;;
      *) out+=/$seg ;;
    esac
  done
  REPLY=${out:-/}
}

# abs_path PATH: PATH made absolute against install_dir (the server's working directory, where it
# resolves relative paths) and cleaned, in REPLY.
abs_path() {
  if [[ $1 == /* ]]; then clean_path "$1"; else clean_path "$install_dir/$1"; fi
}
