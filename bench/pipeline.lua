-- SPDX-License-Identifier: MIT
-- HTTP pipelining as TechEmpower runs it: each send carries DEPTH requests (wrk's
-- default request, with the -H headers), and wrk waits for all DEPTH responses before
-- the next send. Usage: wrk ... -s bench/pipeline.lua URL -- DEPTH (default 16)
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
