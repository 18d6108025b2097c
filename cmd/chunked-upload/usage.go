package main

const usageText = `chunked-upload: resumable uploads to a chunked-uploader server

Usage:
  chunked-upload [global flags] COMMAND [flags] ARGS

Commands:
  upload FILE   upload FILE; prints the upload id first, so that it can be resumed
      --path DIR         deliver under DIR (DIR/<file_id>_NAME; default files/<file_id>_NAME)
      --name NAME        remote file name (default: FILE's base name)
      --concurrency N    parts sent at once (default 4)
      --webhook URL      the server POSTs to URL once the file is delivered
      --checksum         read FILE once more first for its SHA-256; the server checks the
                         delivered file against it
  resume ID FILE  send the parts of upload ID that the server does not have, then complete it
      --concurrency N    parts sent at once (default 4)
  status ID     show an upload's state (--json: the server's answer)
  cancel ID     cancel an upload and remove its parts from the server
  health        show the server's and its storage backend's health
  help          show this help

Global flags (before or after the command):
  --server URL     server address (default $CHUNKED_UPLOADER_URL, else http://localhost:3000)
  --api-key KEY    API key (default $API_KEY, else API_KEY in ./.env, read as the server
                   reads it); prefer the environment: a flag is visible to other users in
                   the process list
  --json           print results as JSON on stdout
  --quiet          no progress and no upload id line; errors are still printed
  --version        print the version and VCS revision this binary was built from (before
                   any command), and exit

Progress goes to stderr: on a terminal one line redrawn up to 10 times a second (bar, bytes
sent, rate, ETA), otherwise one line every 5% or 10 seconds. Ctrl-C (or SIGTERM) stops the
upload, keeps what the server has, and prints the resume command.

Exit codes:
  0    success
  1    the upload, the delivery or a request failed (the error is printed)
  2    usage error
  3    the server refused the API key or a part token (HTTP 401 or 403)
  4    no such upload (HTTP 404)
  130  interrupted (Ctrl-C or SIGTERM); the upload can be resumed
`
