-- Argo CD health check for virtstack.io/VirtualMachine (docs/gitops.md). Lua 5.1, as Argo CD runs it.
local hs = {status = "Progressing", message = "Waiting for the operator to report"}
if obj.status == nil or obj.status.observedGeneration == nil then
  return hs
end
if obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
hs.message = ready.reason .. ": " .. (ready.message or "")
-- On the way (transitions, a root disk being prepared, waiting for room or for its ISO): Progressing;
-- else Degraded.
local progressing = {
  Creating = true, Starting = true, Stopping = true, Migrating = true, Destroying = true,
  Running = true, Stopped = true, Provisioning = true, CapacityLimit = true, ISONotReady = true,
}
if not progressing[ready.reason] then
  hs.status = "Degraded"
end
return hs
