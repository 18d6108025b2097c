module github.com/chunked-uploader/chunked-uploader/cmd

go 1.26.8
