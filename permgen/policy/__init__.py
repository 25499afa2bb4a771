"""The policy language: the model (parse leniently, emit strictly), the one wildcard matcher, the action catalog."""
