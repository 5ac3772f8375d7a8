#!/usr/bin/env python3
"""Every field of core/config.proto is read by the code (a field nothing reads is a silent no-op for the
user who sets it). For each field F of message M, some source file outside tests/ must both call F's
accessor (.F(), ->F(), has_F(), F_size()) and name M's accessor or type (so a field called `name` is not
'read' by an unrelated .name()); a field of RunConfig itself must be read off something called config; a field of a model message may be read
by name through reflection off the model section the config selects (FindFieldByName("F")). Prints each field with the file that reads it; exits 1 listing the unread.
Usage: config_fields_read.py PROJECT_ROOT"""
import os
import re
import sys

root = sys.argv[1]
proto = open(os.path.join(root, "core", "config.proto")).read()
proto = re.sub(r"//[^\n]*", "", proto)

# message name -> [(field name, type name)]
messages = {}
for m in re.finditer(r"message\s+(\w+)\s*\{", proto):
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(proto[i], 0)
        i += 1
    body = proto[m.end():i - 1]
    fields = re.findall(r"(?:optional|repeated|required)?\s*([\w.]+)\s+(\w+)\s*=\s*\d+", body)
    messages[m.group(1)] = [(name, ftype) for ftype, name in fields if ftype not in ("oneof", "message")]

# How each message is reached: the accessor names of the fields of its type ("vit" for VitConfig).
accessors = {name: {name} for name in messages}
for fields in messages.values():
    for name, ftype in fields:
        if ftype in accessors:
            accessors[ftype].add(name)

sources = {}
for folder in ("core", "launcher", "trainer", "datastore", "models", "eval", "slurm", "tools", "comm", "runtime", "bench"):
    for dirpath, _, files in os.walk(os.path.join(root, folder)):
        for f in files:
            if f.endswith((".cpp", ".h")) and ".pb." not in f:
                path = os.path.join(dirpath, f)
                sources[os.path.relpath(path, root)] = open(path).read()

unread = []
for message, fields in sorted(messages.items()):
    parent = [re.compile(r"\b%s\(\w*\)" % a if a != message else r"\b%s\b" % a) for a in accessors[message]]
    for name, _ in fields:
        use = re.compile(r"(\.|->)%s\(\)|\bhas_%s\(\)|\b%s_size\(\)|(\.|->)%s\(\w+\)" % (name, name, name, name))
        if message == "RunConfig":  # top-level fields: read off something called config (or c)
            use = re.compile(r"(\b\w*[cC]onfig\w*(\(\))?|\bc)(\.|->)(%s\(\)|has_%s\(\)|%s_size\(\))" % (name, name, name))
        readers = [p for p, text in sorted(sources.items())
                   if use.search(text) and (message == "RunConfig" or any(r.search(text) for r in parent))]
        # The fields every model message of a kind shares are read by name through reflection, off whichever
        # message the config's `model` oneof selects (models/model_spec.cpp classifier_settings).
        if not readers and message.endswith("Config") and any(message == t for _, t in messages["ModelConfig"]):
            by_name = re.compile(r'FindFieldByName\("%s"\)' % name)
            readers = [p for p, text in sorted(sources.items()) if by_name.search(text) and "model_section" in text]
        if readers:
            print("read    %s.%s (%s)" % (message, name, readers[0]))
        else:
            unread.append("%s.%s" % (message, name))
for u in unread:
    print("UNREAD  %s: nothing outside tests/ reads it" % u)
sys.exit(1 if unread else 0)
