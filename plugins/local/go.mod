module github.com/chunked-uploader/chunked-uploader/plugins/local

go 1.26.8
