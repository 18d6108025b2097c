#!/usr/bin/env bash
# lb-config.sh: the HAProxy or nginx configuration for chunked-uploader nodes behind one load
# balancer (docs/deploy.md, "Scaling out"). It prints the configuration for a list of nodes:
#
#   scripts/lb-config.sh haproxy [options] NAME=HOST:PORT...   > /etc/haproxy/haproxy.cfg
#   scripts/lb-config.sh nginx   [options] NAME=HOST:PORT...   > /etc/nginx/conf.d/chunked-uploader.conf
#
# NAME is the node's NODE_ID. Routing: POST /upload/init, POST /files/ (tus), /health and
# anything whose path names no node go round robin to a healthy node; every /upload/<file_id>...
# route and every tus URL /files/<file_id>.<signature> goes to the node named in the file_id's
# last group (12 hex digits: the node's name in ASCII, padded on the left
# with 00 bytes). Request bodies are streamed, never buffered, except init's small JSON, which
# is buffered so that the balancer can send it to another node when one refuses it.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: lb-config.sh haproxy|nginx [options] NAME=HOST:PORT...

  NAME=HOST:PORT          a node: its NODE_ID and the address it listens on (SERVER_PORT)
  --listen [HOST]:PORT    where the balancer listens (default :80)
  --chunk-mb N            the nodes' CHUNK_SIZE_MB (default 50): bodies over N+1 MiB are refused
  --timeout DURATION      longest silence within a request or a response (default 300s): a part
                          stalled that long is cut; raise it for clients that pause longer
  --check-interval DURATION
                          haproxy: time between health checks of a node (GET /health; default 2s);
                          a node is out after 2 failed checks and back after 2 good ones
  --fail-timeout DURATION nginx: how long a node that failed an init gets no new uploads
                          (default 10s; nginx has no active health checks)
  --admin-socket PATH     haproxy: a runtime API socket (show stat, set server ... state drain)
  --retire NAME           node NAME gets no new uploads but still serves its own (to remove it once
                          its uploads are done); may be repeated

DURATION is a number and a unit: 500ms, 2s, 5m.
EOF
}

die() {
	echo "lb-config.sh: $*" >&2
	exit 2
}

(($#)) || {
	usage >&2
	exit 2
}
kind=$1
shift
case $kind in
haproxy | nginx) ;;
-h | --help | help)
	usage
	exit 0
	;;
*) die "unknown balancer '$kind': haproxy or nginx" ;;
esac

listen=:80
chunk_mb=50
timeout=300s
check_interval=2s
fail_timeout=10s
admin_socket=
retired=()
names=()
addrs=()
duration_re='^[0-9]+(ms|s|m)$'
while (($#)); do
	case $1 in
	--listen | --chunk-mb | --timeout | --check-interval | --fail-timeout | --admin-socket | --retire)
		(($# >= 2)) || die "$1 needs a value"
		case $1 in
		--listen) listen=$2 ;;
		--chunk-mb) chunk_mb=$2 ;;
		--timeout) timeout=$2 ;;
		--check-interval) check_interval=$2 ;;
		--fail-timeout) fail_timeout=$2 ;;
		--admin-socket) admin_socket=$2 ;;
		--retire) retired+=("$2") ;;
		esac
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die "unknown option $1" ;;
	*=*)
		name=${1%%=*}
		addr=${1#*=}
		[[ $name =~ ^[a-z0-9][a-z0-9-]{0,5}$ ]] ||
			die "node name '$name' is not a NODE_ID: 1 to 6 lowercase letters, digits or '-', starting with a letter or digit"
		[[ $addr =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] ||
			die "node $name: '$addr' is not HOST:PORT"
		for n in "${names[@]}"; do
			[[ $n != "$name" ]] || die "node $name is listed twice"
		done
		names+=("$name")
		addrs+=("$addr")
		shift
		;;
	*) die "'$1' is not NAME=HOST:PORT" ;;
	esac
done
((${#names[@]})) || die "no nodes: give at least one NAME=HOST:PORT"
for r in "${retired[@]}"; do
	found=0
	for n in "${names[@]}"; do
		[[ $n != "$r" ]] || found=1
	done
	((found)) || die "--retire $r: no node $r in the list"
done
((${#retired[@]} < ${#names[@]})) || die "every node is retired: no node would take new uploads"
[[ $listen =~ ^([A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] || die "--listen '$listen' is not [HOST]:PORT"
[[ $chunk_mb =~ ^[1-9][0-9]{0,3}$ ]] || die "--chunk-mb '$chunk_mb' is not a whole number of MiB (1 to 5120)"
((chunk_mb <= 5120)) || die "--chunk-mb '$chunk_mb' is over 5120 (the server's limit)"
for d in "$timeout" "$check_interval" "$fail_timeout"; do
	[[ $d =~ $duration_re ]] || die "'$d' is not a duration such as 500ms, 2s or 5m"
done
[[ -z $admin_socket || $admin_socket =~ ^/[A-Za-z0-9._/-]+$ ]] || die "--admin-socket '$admin_socket' is not an absolute path"

# Bodies up to one MiB over the chunk size pass the balancer; the node checks each part's exact size.
body_limit=$(((chunk_mb + 1) * 1048576))

# takes_new NAME: whether node NAME takes new uploads (is not retired).
takes_new() {
	local r
	for r in "${retired[@]}"; do
		[[ $r != "$1" ]] || return 1
	done
}

# field NAME: the node field of a file_id, as package host/node writes it.
field() {
	local hex
	hex=$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')
	printf '%012s' "$hex" | tr ' ' 0
}

header() {
	local cmd="scripts/lb-config.sh $kind"
	[[ $listen == :80 ]] || cmd+=" --listen $listen"
	[[ $chunk_mb == 50 ]] || cmd+=" --chunk-mb $chunk_mb"
	[[ $timeout == 300s ]] || cmd+=" --timeout $timeout"
	if [[ $kind == haproxy ]]; then
		[[ $check_interval == 2s ]] || cmd+=" --check-interval $check_interval"
		[[ -z $admin_socket ]] || cmd+=" --admin-socket $admin_socket"
	else
		[[ $fail_timeout == 10s ]] || cmd+=" --fail-timeout $fail_timeout"
	fi
	local i r
	for r in "${retired[@]}"; do
		cmd+=" --retire $r"
	done
	for i in "${!names[@]}"; do
		cmd+=" ${names[i]}=${addrs[i]}"
	done
	cat <<EOF
# chunked-uploader behind $kind: nodes ${names[*]} (docs/deploy.md, "Scaling out").
# Generated by: $cmd
# Regenerate it when the nodes change rather than editing it by hand.
#
# POST /upload/init, POST /files/ (tus creation), /health and paths that name no node go round
# robin to a healthy node; /upload/<file_id>... and the tus URLs /files/<file_id>.<signature>
# go to the node named in the last group of the file_id (12 hex digits: the node's NODE_ID in
# ASCII, padded on the left with 00). Bodies are streamed, not buffered.
EOF
}

json_error() { # STATUS CODE MESSAGE
	printf '{"error":"%s","code":"%s","status":%s}' "$3" "$2" "$1"
}

haproxy_config() {
	local i
	header
	echo
	echo "global"
	echo "    log stdout format raw daemon"
	echo "    # Each connection takes two file descriptors (client and node): raise with LimitNOFILE."
	echo "    maxconn 4000"
	[[ -z $admin_socket ]] || echo "    stats socket $admin_socket mode 600 level admin"
	cat <<EOF

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    # Request bodies (50 MiB parts) go from socket to socket in the kernel (splice(2)): about
    # a third of the CPU time of copying them through user space.
    option splice-request
    timeout connect 5s
    # Inactivity timeouts: a part may take as long as it needs while bytes flow.
    timeout client $timeout
    timeout server $timeout
    timeout http-request 30s
    timeout http-keep-alive 60s
    timeout queue 30s
    timeout check 5s
    retries 3
    default-server inter $check_interval fastinter $check_interval downinter $check_interval rise 2 fall 2
    http-error status 502 content-type application/json string '$(json_error 502 bad_gateway "the node answered no valid response; retry")'
    http-error status 503 content-type application/json string '$(json_error 503 node_unavailable "no node is available; retry later")' hdr Retry-After 5
    http-error status 504 content-type application/json string '$(json_error 504 gateway_timeout "the node did not answer in time; retry")'

frontend chunked_uploader
    bind $listen
    # A part is at most CHUNK_SIZE_MB ($chunk_mb MiB); larger bodies stop here. A tus PATCH may
    # carry any part of the file (the node checks it against Upload-Length).
    http-request return status 413 content-type application/json string '$(json_error 413 request_too_large "request body over $((chunk_mb + 1)) MiB")' if { req.hdr_val(content-length) gt $body_limit } !{ path_beg /files/ }
    # The node field of the file_id in /upload/<file_id>[/...] and /files/<file_id>.<signature>.
    http-request set-var(txn.node) path,field(3,/),field(5,-) if { path_reg ^/upload/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(/|\$) }
    http-request set-var(txn.node) path,field(3,/),field(1,.),field(5,-) if { path_reg ^/files/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.|/|\$) }
EOF
	for i in "${!names[@]}"; do
		echo "    use_backend node_${names[i]} if { var(txn.node) -m str $(field "${names[i]}") }"
	done
	cat <<EOF
    default_backend any_node

# New uploads: round robin over the healthy nodes (GET /health answers 200). Init's small body
# is buffered so that it can be sent to the next node when one refuses the connection or
# answers 503 (draining, storage backend down).
backend any_node
    balance roundrobin
    option http-buffer-request
    retry-on conn-failure empty-response 503
    option redispatch 1
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host chunked-uploader
    http-check expect status 200
EOF
	for i in "${!names[@]}"; do
		takes_new "${names[i]}" || continue
		echo "    server ${names[i]} ${addrs[i]} check"
	done
	for i in "${!names[@]}"; do
		cat <<EOF

# The uploads of node ${names[i]}: only that node can serve them. While it is down they get 503.
# A node that answers /health with 503 (draining, or its storage backend down) still serves
# its uploads: it is down only when it does not answer.
backend node_${names[i]}
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host chunked-uploader
    http-check expect rstatus ^(200|503)\$
    http-error status 503 content-type application/json string '$(json_error 503 node_unavailable "node ${names[i]}, which holds this upload, is unavailable; retry later")' hdr Retry-After 5
    server ${names[i]} ${addrs[i]} check
EOF
	done
}

nginx_config() {
	local i listen_nginx=$listen
	[[ $listen_nginx != :* ]] || listen_nginx=${listen_nginx#:}
	header
	cat <<EOF
#
# Include it in the http block (Debian: /etc/nginx/conf.d/). nginx (open source) has no active
# health checks: a node that refuses or fails an init (connection refused, 503 while draining or
# while its storage backend is down) gets no new uploads for $fail_timeout, and the init goes to
# the next node; a node's own uploads always go to it (503 while it is down).

# New uploads: any node.
upstream cu_any {
EOF
	for i in "${!names[@]}"; do
		takes_new "${names[i]}" || continue
		echo "    server ${addrs[i]} max_fails=1 fail_timeout=$fail_timeout;"
	done
	echo "    keepalive 32;"
	echo "}"
	for i in "${!names[@]}"; do
		cat <<EOF

upstream cu_node_${names[i]} {
    server ${addrs[i]};
    keepalive 16;
}
EOF
	done
	cat <<EOF

# The node field of the file_id in /upload/<file_id>[/...] and /files/<file_id>.<signature>,
# then the node's upstream.
map \$uri \$cu_node_field {
    "~^/upload/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-(?<field>[0-9a-f]{12})(/|\$)" \$field;
    "~^/files/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-(?<field>[0-9a-f]{12})(\.|/|\$)" \$field;
    default "";
}
map \$cu_node_field \$cu_upstream {
EOF
	for i in "${!names[@]}"; do
		echo "    $(field "${names[i]}") cu_node_${names[i]};"
	done
	cat <<EOF
    default cu_any;
}

server {
    listen $listen_nginx;

    # A part is at most CHUNK_SIZE_MB ($chunk_mb MiB): bodies are streamed to the node as they come.
    client_max_body_size $((chunk_mb + 1))m;
    proxy_request_buffering off;
    proxy_buffering off;
    # Inactivity timeouts: a part may take as long as it needs while bytes flow.
    client_body_timeout $timeout;
    send_timeout $timeout;
    proxy_connect_timeout 5s;
    proxy_send_timeout $timeout;
    proxy_read_timeout $timeout;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_next_upstream off;
    # tus Upload-Metadata may be up to 16 KiB, as the node takes it.
    large_client_header_buffers 4 32k;
    # nginx's own errors (a request it cannot parse, a body over the limit, node unreachable, no
    # node left) as the API's JSON.
    error_page 400 494 = @cu_bad_request;
    error_page 413 = @cu_too_large;
    error_page 502 503 504 = @cu_unavailable;

    # Init's small body is buffered so that it can go to the next node when one refuses it.
    location = /upload/init {
        proxy_request_buffering on;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_pass http://cu_any;
    }

    location / {
        proxy_pass http://\$cu_upstream;
    }

    # tus (docs/tus.md): a PATCH may carry any part of the file (the node checks it against
    # Upload-Length).
    location /files/ {
        client_max_body_size 0;
        proxy_pass http://\$cu_upstream;
    }

    # tus creation, as init: to the next node when one refuses it. A creation without a body
    # (tus clients' default) is retried; one that carries data is streamed, and cannot be.
    location = /files/ {
        client_max_body_size 0;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_pass http://cu_any;
    }

    location @cu_bad_request {
        default_type application/json;
        return 400 '$(json_error 400 bad_request "the request is not valid HTTP (the balancer refused it)")';
    }

    location @cu_too_large {
        default_type application/json;
        return 413 '$(json_error 413 request_too_large "request body over $((chunk_mb + 1)) MiB")';
    }

    location @cu_unavailable {
        default_type application/json;
        add_header Retry-After 5 always;
        return 503 '$(json_error 503 node_unavailable "the node that holds this upload is unavailable; retry later")';
    }
}
EOF
}

"${kind}_config"
