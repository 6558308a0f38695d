-- wrk script: POST /requests with the seed README's body shape.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"vm_name": "tiny", "commands": "echo Hello World && uname -a", "timeout": 300}'
