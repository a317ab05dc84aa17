-- wrk script: POST the JSON body in the file named by BODY_FILE (non-200 answers are counted by
-- wrk as "Non-2xx or 3xx responses" and reported next to the figures).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
