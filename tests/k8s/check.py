#!/usr/bin/env python3
"""`make k8s-check`: every Kubernetes and Istio file in k8s/ checked offline.

- Each kustomization (base, overlays, istio) is built by a small kustomize of our own (the
  subset these files use: resources, namespace, configMapGenerator, JSON 6902 patches, name
  suffix hashes and references to them). When `kubectl` (which embeds kustomize) is on PATH,
  its `kubectl kustomize` output must be the same, resource for resource.
- Every built resource is validated: built-in kinds against the Kubernetes schemas bundled in
  PyPI's kubernetes-validate (strict: unknown fields are errors), Istio and cert-manager kinds
  against the CRD schemas in k8s/schemas/ (unknown fields are errors too, where the API server
  would silently drop them).
- The Envoy bootstrap inside each built ConfigMap envoy-bootstrap is the generated file, agrees
  with the Deployment (ports, mount paths, the rate limit Service), and passes
  `envoy --mode validate` with the Kubernetes-only paths swapped for local ones.
- Cross-checks: security settings and resources of every container, references between
  objects, rate limit configs, the Istio resources against each other, the README commands.

Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""
import copy
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/staging", "k8s/overlays/prod", "k8s/overlays/prod-tls", "k8s/istio"]
# Oldest and newest Kubernetes versions the manifests are checked against.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
ENVOY = os.environ.get("ENVOY_BIN", str(ROOT / ".venv/bin/envoy"))
WASM = os.environ.get("GATEWAY_WASM", str(ROOT / "target/wasm32-wasip1/release/ai_gateway.wasm"))
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterIssuer"}
# Secrets the manifests reference but do not create: the provider keys (created by the user,
# optional) and the certificate cert-manager writes.
EXTERNAL_SECRETS = {"ai-gateway-provider-keys", "ai-gateway-tls"}

results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok    {name}")
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        results.append((name, str(e)))
        print(f"FAIL  {name}\n      {str(e).replace(chr(10), chr(10) + '      ')}")


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------------------------------------
# A small kustomize: the subset our kustomizations use, and an error for anything else.

KNOWN_KEYS = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator", "patches"}


def kustomize(directory):
    """Builds a kustomization directory; returns its resources, generated names hashed."""
    resources = _build(pathlib.Path(directory))
    renames = {}
    for r in resources:
        if r.pop("__generated__", False):
            name = r["metadata"]["name"]
            r["metadata"]["name"] = f"{name}-{configmap_hash(r)}"
            renames[name] = r["metadata"]["name"]
    for r in resources:
        for spec in pod_specs(r):
            rename_configmap_refs(spec, renames)
    return resources


def _build(directory):
    kfile = directory / "kustomization.yaml"
    if not kfile.exists():
        raise ValueError(f"{directory}: no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    unknown = set(k) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"{kfile}: fields our kustomize does not implement: {sorted(unknown)}")
    resources = []
    for entry in k.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(_build(path))
        else:
            inside(path, directory, kfile)
            resources.extend(load_docs(path))
    for gen in k.get("configMapGenerator", []):
        apply_generator(resources, gen, directory, kfile)
    if "namespace" in k:
        for r in resources:
            if r["kind"] == "Namespace":
                r["metadata"]["name"] = k["namespace"]
            elif r["kind"] not in CLUSTER_SCOPED:
                r["metadata"]["namespace"] = k["namespace"]
    for p in k.get("patches", []):
        apply_patch(resources, p, directory, kfile)
    return resources


def inside(path, directory, kfile):
    # kustomize's default load restrictor: files must be inside the kustomization's directory.
    if directory.resolve() not in path.resolve().parents:
        raise ValueError(f"{kfile}: {path} is outside the kustomization directory")


def apply_generator(resources, gen, directory, kfile):
    unknown = set(gen) - {"name", "behavior", "files", "literals"}
    if unknown:
        raise ValueError(f"{kfile}: configMapGenerator fields not implemented: {sorted(unknown)}")
    data = {}
    for f in gen.get("files", []):
        key, _, rel = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
        path = directory / rel
        inside(path, directory, kfile)
        data[key] = path.read_text(encoding="utf-8")
    for lit in gen.get("literals", []):
        key, _, value = lit.partition("=")
        data[key] = value
    behavior = gen.get("behavior", "create")
    existing = [r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"] == gen["name"]]
    if behavior == "create":
        if existing:
            raise ValueError(f"{kfile}: ConfigMap {gen['name']} already exists (use behavior)")
        resources.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]},
                          "data": data, "__generated__": True})
    elif behavior in ("replace", "merge"):
        if len(existing) != 1:
            raise ValueError(f"{kfile}: {behavior} of ConfigMap {gen['name']}, found {len(existing)}")
        if behavior == "replace":
            existing[0]["data"] = data
        else:
            existing[0].setdefault("data", {}).update(data)
    else:
        raise ValueError(f"{kfile}: unknown behavior {behavior}")


def configmap_hash(cm):
    # kustomize (api/hasher): sha256 of Go's json.Marshal of {kind, name, data}; its lookup of
    # "metadata/name" finds nothing, so the name hashed is "". First 10 hex digits, with
    # 0 1 3 a e mapped to g h k m t.
    doc = {"data": cm.get("data", {}), "kind": "ConfigMap", "name": ""}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def pod_specs(r):
    spec = r.get("spec", {})
    if r["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return [spec["template"]["spec"]]
    if r["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if r["kind"] == "Pod":
        return [spec]
    return []


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def rename_configmap_refs(spec, renames):
    for v in spec.get("volumes", []):
        if "configMap" in v:
            v["configMap"]["name"] = renames.get(v["configMap"]["name"], v["configMap"]["name"])
    for c in containers(spec):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                ref["name"] = renames.get(ref["name"], ref["name"])
        for e in c.get("envFrom", []):
            ref = e.get("configMapRef")
            if ref:
                ref["name"] = renames.get(ref["name"], ref["name"])


def apply_patch(resources, p, directory, kfile):
    unknown = set(p) - {"target", "patch", "path"}
    if unknown:
        raise ValueError(f"{kfile}: patch fields not implemented: {sorted(unknown)}")
    text = p["patch"] if "patch" in p else (directory / p["path"]).read_text(encoding="utf-8")
    ops = yaml.safe_load(text)
    if not isinstance(ops, list):
        raise ValueError(f"{kfile}: only JSON 6902 patches (a list of operations) are implemented")
    target = p["target"]
    if set(target) - {"kind", "name"}:
        raise ValueError(f"{kfile}: patch targets by kind and name only")
    matched = [r for r in resources if r["kind"] == target["kind"] and r["metadata"]["name"] == target["name"]]
    if not matched:
        raise ValueError(f"{kfile}: patch target {target} matches nothing")
    for r in matched:
        for op in ops:
            json_patch(r, op, kfile)


def json_patch(doc, op, kfile):
    parts = [s.replace("~1", "/").replace("~0", "~") for s in op["path"].split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, op["value"])
        elif kind == "replace":
            parent[index] = op["value"]
        elif kind == "remove":
            del parent[index]
        else:
            raise ValueError(f"{kfile}: JSON patch op {kind} not implemented")
    else:
        if kind in ("replace", "remove") and last not in parent:
            raise ValueError(f"{kfile}: {kind} of missing {op['path']}")
        if kind in ("add", "replace"):
            parent[last] = op["value"]
        elif kind == "remove":
            del parent[last]
        else:
            raise ValueError(f"{kfile}: JSON patch op {kind} not implemented")


def key(r):
    return (r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"])


def by_key(resources):
    out = {}
    for r in resources:
        if key(r) in out:
            raise ValueError(f"duplicate resource {key(r)}")
        out[key(r)] = r
    return out


def find(resources, kind, name=None):
    return [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]


def one(resources, kind, name):
    found = find(resources, kind, name)
    if len(found) != 1:
        raise ValueError(f"expected one {kind} {name}, found {len(found)}")
    return found[0]


# ---------------------------------------------------------------------------------------------
# Schemas

def validate_builtin(r):
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(r, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            raise ValueError(f"{key(r)} against Kubernetes {version}: {e.message} at {path}") from None


def strict_schema(schema):
    """Unknown fields become errors wherever the CRD lists its fields (the API server would
    silently prune them)."""
    if isinstance(schema, dict):
        schema = {k: strict_schema(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    return schema


def crd_schema(r):
    group, _, version = r["apiVersion"].rpartition("/")
    path = K8S / "schemas" / f"{group}_{version}_{r['kind']}.json".lower()
    if not path.exists():
        return None
    return strict_schema(json.loads(path.read_text(encoding="utf-8")))


def validate_resource(r):
    schema = crd_schema(r)
    if schema is not None:
        doc = {k: v for k, v in r.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors({**doc}), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise ValueError(f"{key(r)}: {e.message} at {'/'.join(str(p) for p in e.path)}")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", r["metadata"]["name"]):
            raise ValueError(f"{key(r)}: invalid name")
    elif "." in r["apiVersion"].split("/")[0] and r["apiVersion"].split("/")[0] not in (
            "apps", "policy", "autoscaling", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"):
        raise ValueError(f"{key(r)}: no schema in k8s/schemas/ for {r['apiVersion']} {r['kind']}")
    else:
        validate_builtin(r)


# ---------------------------------------------------------------------------------------------
# Cross-checks

def check_security(resources):
    for r in resources:
        for spec in pod_specs(r):
            pod_sc = spec.get("securityContext", {})
            for c in containers(spec):
                where = f"{key(r)} container {c['name']}"
                sc = c.get("securityContext", {})
                if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                    raise ValueError(f"{where}: runAsNonRoot is not set")
                if sc.get("allowPrivilegeEscalation") is not False:
                    raise ValueError(f"{where}: allowPrivilegeEscalation must be false")
                if sc.get("readOnlyRootFilesystem") is not True:
                    raise ValueError(f"{where}: readOnlyRootFilesystem must be true")
                if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                    raise ValueError(f"{where}: capabilities must drop ALL")
                res = c.get("resources", {})
                for kind in ("requests", "limits"):
                    if not {"cpu", "memory"} <= set(res.get(kind, {})):
                        raise ValueError(f"{where}: resources.{kind} needs cpu and memory")
                image = c["image"]
                if image != "auto" and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                    raise ValueError(f"{where}: image {image} is not pinned")


def check_references(resources):
    configmaps = {r["metadata"]["name"] for r in find(resources, "ConfigMap")}
    secrets = {r["metadata"]["name"] for r in find(resources, "Secret")} | EXTERNAL_SECRETS
    for r in resources:
        for spec in pod_specs(r):
            for v in spec.get("volumes", []):
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    raise ValueError(f"{key(r)}: volume {v['name']} names a missing ConfigMap")
                if "secret" in v and v["secret"]["secretName"] not in secrets:
                    raise ValueError(f"{key(r)}: volume {v['name']} names an unknown Secret")
            volumes = {v["name"] for v in spec.get("volumes", [])}
            for c in containers(spec):
                for m in c.get("volumeMounts", []):
                    if m["name"] not in volumes:
                        raise ValueError(f"{key(r)}: {c['name']} mounts unknown volume {m['name']}")
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("configMapKeyRef")
                    if ref:
                        cm = one(resources, "ConfigMap", ref["name"])
                        if ref["key"] not in cm.get("data", {}):
                            raise ValueError(f"{key(r)}: env {e['name']} names missing key {ref['key']}")
                for e in c.get("envFrom", []):
                    if "secretRef" in e and e["secretRef"]["name"] not in secrets:
                        raise ValueError(f"{key(r)}: envFrom names an unknown Secret")
                ports = {p.get("name") for p in c.get("ports", [])}
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    port = c.get(probe, {}).get("httpGet", {}).get("port") or c.get(probe, {}).get("tcpSocket", {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        raise ValueError(f"{key(r)}: {c['name']} {probe} uses unknown port {port}")
    for svc in find(resources, "Service"):
        selector = svc["spec"]["selector"]
        pods = [(r, s) for r in resources for s in pod_specs(r)
                if selector.items() <= r["spec"]["template"]["metadata"]["labels"].items()]
        if not pods:
            raise ValueError(f"{key(svc)}: selector {selector} matches no pod template")
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort")
            names = {port.get("name") for _, s in pods for c in s["containers"] for port in c.get("ports", [])}
            if isinstance(target, str) and target not in names:
                raise ValueError(f"{key(svc)}: targetPort {target} is no container port")
    for kind in ("HorizontalPodAutoscaler",):
        for r in find(resources, kind):
            one(resources, r["spec"]["scaleTargetRef"]["kind"], r["spec"]["scaleTargetRef"]["name"])
    for pdb in find(resources, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(sel.items() <= r["spec"]["template"]["metadata"]["labels"].items()
                   for r in resources if pod_specs(r)):
            raise ValueError(f"{key(pdb)}: selector matches no pod template")
    for cm in find(resources, "ConfigMap"):
        for k, v in cm.get("data", {}).items():
            if re.search(r"\b(sk-[A-Za-z0-9]{8,}|AKIA[0-9A-Z]{16})", v):
                raise ValueError(f"{key(cm)}: {k} looks like it holds a provider key")


def container(resources, deployment, name):
    spec = pod_specs(one(resources, "Deployment", deployment))[0]
    for c in containers(spec):
        if c["name"] == name:
            return spec, c
    raise ValueError(f"no container {name} in Deployment {deployment}")


def mount_path(spec, c, volume_kind, name):
    vols = [v["name"] for v in spec["volumes"] if v.get(volume_kind, {}).get("name", v.get(volume_kind, {}).get("secretName")) == name]
    for m in c["volumeMounts"]:
        if m["name"] in vols:
            return m["mountPath"]
    raise ValueError(f"container {c['name']} does not mount {volume_kind} {name}")


def check_bootstrap(resources, generated_file, validated):
    """The bootstrap in ConfigMap envoy-bootstrap is the generated file and agrees with the pod."""
    cms = [r for r in find(resources, "ConfigMap") if r["metadata"]["name"].startswith("envoy-bootstrap-")]
    if len(cms) != 1:
        raise ValueError(f"expected one ConfigMap envoy-bootstrap-<hash>, found {len(cms)}")
    text = cms[0]["data"]["envoy.yaml"]
    if text != (ROOT / generated_file).read_text(encoding="utf-8"):
        raise ValueError(f"ConfigMap envoy-bootstrap is not {generated_file}")
    boot = yaml.safe_load(text)
    spec, envoy = container(resources, "ai-gateway", "envoy")
    config_dir = mount_path(spec, envoy, "configMap", cms[0]["metadata"]["name"])
    args = envoy["args"]
    if args[args.index("--config-path") + 1] != f"{config_dir}/envoy.yaml":
        raise ValueError(f"--config-path is not {config_dir}/envoy.yaml")
    wasm_dir = [m["mountPath"] for m in envoy["volumeMounts"] if m["name"] == "wasm"][0]
    filenames = set()
    walk(boot, lambda k, v: filenames.add(v["local"]["filename"]) if k == "code" else None)
    if filenames != {f"{wasm_dir}/plugin.wasm"}:
        raise ValueError(f"wasm code paths {filenames} are not the init container's {wasm_dir}/plugin.wasm")
    ports = {p["name"]: p["containerPort"] for p in envoy["ports"]}
    listeners = {l["name"]: l["address"]["socket_address"] for l in boot["static_resources"]["listeners"]}
    if listeners["gateway"] != {"address": "0.0.0.0", "port_value": ports["http"]}:
        raise ValueError(f"gateway listener {listeners['gateway']} is not 0.0.0.0:{ports['http']}")
    if listeners["probes"]["port_value"] != ports["probes"]:
        raise ValueError("probes listener port is not the container's probes port")
    if boot["admin"]["address"]["socket_address"]["address"] != "127.0.0.1":
        raise ValueError("the admin API must stay on 127.0.0.1")
    annotations = spec_annotations(resources)
    if int(annotations["prometheus.io/port"]) != ports["probes"]:
        raise ValueError("prometheus.io/port is not the probes port")
    rl = [c for c in boot["static_resources"]["clusters"] if c["name"] == "ratelimit"][0]
    addr = rl["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    svc = one(resources, "Service", addr["address"])
    if addr["port_value"] not in [p["port"] for p in svc["spec"]["ports"]]:
        raise ValueError(f"ratelimit cluster port {addr['port_value']} is not a port of Service {addr['address']}")
    if "http2_protocol_options" not in json.dumps(rl):
        raise ValueError("the ratelimit cluster must speak HTTP/2 (gRPC)")
    plugin = json.loads(find_plugin_config(boot))
    keys = set(host_env_keys(boot))
    for pid, p in plugin["providers"].items():
        if "api_key_env" in p and p["api_key_env"] not in keys:
            raise ValueError(f"provider {pid}: {p['api_key_env']} is not in host_env_keys")
    for c in boot["static_resources"]["clusters"]:
        if c["name"] in ("ratelimit", "envoy_admin"):
            continue
        tls = c.get("transport_socket", {}).get("typed_config", {})
        if not tls.get("sni") or not tls["common_tls_context"]["validation_context"].get("match_typed_subject_alt_names"):
            raise ValueError(f"provider cluster {c['name']} lacks TLS with SNI and SAN validation")
    if text not in validated:
        envoy_validate(cms[0]["data"], config_dir)
        validated.add(text)


def spec_annotations(resources):
    return one(resources, "Deployment", "ai-gateway")["spec"]["template"]["metadata"]["annotations"]


def walk(value, fn):
    if isinstance(value, dict):
        for k, v in value.items():
            fn(k, v)
            walk(v, fn)
    elif isinstance(value, list):
        for v in value:
            walk(v, fn)


def find_plugin_config(boot):
    found = []
    walk(boot, lambda k, v: found.append(v["configuration"]["value"])
         if k == "config" and isinstance(v, dict) and v.get("root_id") == "gateway" else None)
    return found[0]


def host_env_keys(boot):
    found = []
    walk(boot, lambda k, v: found.extend(v.get("host_env_keys", [])) if k == "environment_variables" else None)
    return found


def envoy_validate(data, config_dir):
    """`envoy --mode validate` on the ConfigMap's files, Kubernetes-only paths made local."""
    with tempfile.TemporaryDirectory() as tmp:
        swaps = {
            "/etc/envoy/wasm/plugin.wasm": WASM,
            "/etc/envoy/tls": str(ROOT / "tests/k8s/tls"),
            config_dir: tmp,
        }
        for name, text in data.items():
            for old, new in swaps.items():
                text = text.replace(old, new)
            pathlib.Path(tmp, name).write_text(text, encoding="utf-8")
        run = subprocess.run([ENVOY, "--mode", "validate", "-c", f"{tmp}/envoy.yaml", "-l", "error"],
                             capture_output=True, text=True, timeout=120, check=False)
        if run.returncode != 0:
            raise ValueError(f"envoy --mode validate failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")


UNITS = {"second", "minute", "hour", "day", "week", "month", "year"}


def check_ratelimit_config(resources):
    cm = [r for r in find(resources, "ConfigMap") if r["metadata"]["name"].startswith("ratelimit-config-")]
    if len(cm) != 1:
        raise ValueError("expected one ConfigMap ratelimit-config-<hash>")
    config = yaml.safe_load(cm[0]["data"]["config.yaml"])
    if config.get("domain") != "ai-gateway":
        raise ValueError("rate limit domain must be ai-gateway")
    if set(config) - {"domain", "descriptors"}:
        raise ValueError(f"unknown rate limit config fields {set(config) - {'domain', 'descriptors'}}")

    def descriptors(items, where):
        seen = set()
        for d in items:
            if set(d) - {"key", "value", "rate_limit", "descriptors", "shadow_mode", "detailed_metric"}:
                raise ValueError(f"{where}: unknown descriptor fields in {d}")
            ident = (d["key"], d.get("value"))
            if ident in seen:
                raise ValueError(f"{where}: duplicate descriptor {ident}")
            seen.add(ident)
            if "rate_limit" in d:
                rl = d["rate_limit"]
                if rl.get("unit") not in UNITS or not isinstance(rl.get("requests_per_unit"), int) or rl["requests_per_unit"] < 0:
                    raise ValueError(f"{where}: bad rate_limit {rl}")
            descriptors(d.get("descriptors", []), f"{where}/{d['key']}")

    descriptors(config["descriptors"], "descriptors")
    spec, rl = container(resources, "ratelimit", "ratelimit")
    env = {e["name"]: e.get("value") for e in rl["env"]}
    expected = f"{env['RUNTIME_ROOT']}/{env['RUNTIME_SUBDIRECTORY']}/config"
    if mount_path(spec, rl, "configMap", cm[0]["metadata"]["name"]) != expected:
        raise ValueError(f"the rate limit config is not mounted at {expected}")
    redis_host, _, redis_port = env["REDIS_URL"].partition(":")
    svc = one(resources, "Service", redis_host)
    if int(redis_port) not in [p["port"] for p in svc["spec"]["ports"]]:
        raise ValueError("REDIS_URL does not name the redis Service's port")


def check_istio(resources):
    plugin = one(resources, "WasmPlugin", "ai-gateway")
    ef = one(resources, "EnvoyFilter", "ai-gateway")
    ext = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG"][0]["patch"]["value"]
    cfg = ext["typed_config"]["config"]
    remote = cfg["vm_config"]["code"]["remote"]
    if plugin["spec"]["url"] != remote["http_uri"]["uri"] or plugin["spec"].get("sha256") != remote["sha256"]:
        raise ValueError("the WasmPlugin and the EnvoyFilter must load the same image (url and sha256)")
    if not re.fullmatch(r"[a-f0-9]{64}", remote["sha256"]):
        raise ValueError("set the image's sha256 (64 hex digits)")
    labels = plugin["spec"]["selector"]["matchLabels"]
    deployment = one(resources, "Deployment", "ai-gateway")
    if ef["spec"]["workloadSelector"]["labels"] != labels or one(resources, "Gateway", "ai-gateway")["spec"]["selector"] != labels:
        raise ValueError("WasmPlugin, EnvoyFilter and Gateway must select the same workload")
    if not labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items():
        raise ValueError("the gateway Deployment does not carry the selected labels")
    env = [e["name"] for e in plugin["spec"]["vmConfig"]["env"] if e["valueFrom"] == "HOST"]
    if env != cfg["vm_config"]["environment_variables"]["host_env_keys"]:
        raise ValueError("WasmPlugin vmConfig.env and the EnvoyFilter's host_env_keys differ")
    if json.loads(cfg["configuration"]["value"]) != plugin["spec"]["pluginConfig"]:
        raise ValueError("WasmPlugin pluginConfig and the EnvoyFilter's configuration differ")
    entries = {(h, p["number"]) for se in find(resources, "ServiceEntry") for h in se["spec"]["hosts"] for p in se["spec"]["ports"]}
    clusters = {f"outbound|{port}||{host}" for host, port in entries}
    for pid, p in plugin["spec"]["pluginConfig"]["providers"].items():
        if p.get("cluster") not in clusters:
            raise ValueError(f"provider {pid}: cluster {p.get('cluster')} has no ServiceEntry")
        if "api_key_env" in p and p["api_key_env"] not in env:
            raise ValueError(f"provider {pid}: {p['api_key_env']} is not in vmConfig.env")
    routes = set()
    for p in ef["spec"]["configPatches"]:
        if p["applyTo"] == "HTTP_ROUTE":
            walk(p["patch"]["value"], lambda k, v: routes.add(v) if k == "cluster" and isinstance(v, str) else None)
    patched = {f"outbound|{p['match']['cluster']['portNumber']}||{p['match']['cluster']['service']}"
               for p in ef["spec"]["configPatches"] if p["applyTo"] == "CLUSTER"}
    if routes != clusters or patched != clusters:
        raise ValueError(f"routes {routes} / upstream filters {patched} / ServiceEntries {clusters} differ")
    for p in ef["spec"]["configPatches"]:
        if p["applyTo"] == "CLUSTER":
            filters = p["patch"]["value"]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
            if [f["name"] for f in filters] != [ext["name"], "envoy.filters.http.buffer", "envoy.filters.http.upstream_codec"]:
                raise ValueError("each provider cluster needs the provider filter, buffer, upstream_codec")
    rules = {dr["spec"]["host"]: dr for dr in find(resources, "DestinationRule")}
    for host, port in entries:
        tls = rules[host]["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
        if tls["mode"] != "SIMPLE" or tls.get("sni") != host or not tls.get("subjectAltNames"):
            raise ValueError(f"DestinationRule {host}: TLS origination with SNI and SAN check needed")


def check_orphans():
    used = set()
    for d in KUSTOMIZATIONS:
        directory = ROOT / d
        k = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
        used.add((directory / "kustomization.yaml").resolve())
        for entry in k.get("resources", []):
            used.add((directory / entry).resolve())
        for gen in k.get("configMapGenerator", []):
            for f in gen.get("files", []):
                used.add((directory / f.rpartition("=")[2]).resolve())
        for p in k.get("patches", []):
            if "path" in p:
                used.add((directory / p["path"]).resolve())
    for path in K8S.rglob("*.yaml"):
        if "schemas" not in path.parts and path.resolve() not in used:
            raise ValueError(f"{path.relative_to(ROOT)} is in no kustomization")


def check_readme():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = {}
    for title in ("## Deploy to Kubernetes", "## Deploy with Istio"):
        if title not in text:
            raise ValueError(f"README has no '{title}' section")
        body = text.split(title, 1)[1]
        sections[title] = body.split("\n## ", 1)[0]
    body = "".join(sections.values())
    applied = set(re.findall(r"kubectl (?:apply|kustomize|delete) (?:-k|--kustomize) ([\w./-]+)", body))
    if not applied:
        raise ValueError("the README sections show no `kubectl apply -k` command")
    for d in applied:
        if d not in KUSTOMIZATIONS:
            raise ValueError(f"README applies {d}, which is not a checked kustomization")
    for path in set(re.findall(r"`((?:k8s|tests|envoy)/[^`\s]*)`", body)):
        if not (ROOT / path.rstrip("/")).exists():
            raise ValueError(f"README names {path}, which does not exist")
    for target in re.findall(r"make ([a-z0-9-]+)", body):
        if not re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M):
            raise ValueError(f"README names `make {target}`, which the Makefile does not have")


def same_as_kubectl(directory, ours):
    run = subprocess.run(["kubectl", "kustomize", str(ROOT / directory)], capture_output=True, text=True,
                         timeout=60, check=False)
    if run.returncode != 0:
        raise ValueError(f"kubectl kustomize {directory}: {run.stderr.strip()}")
    theirs = by_key(list(yaml.safe_load_all(run.stdout)))
    mine = by_key(ours)
    if theirs.keys() != mine.keys():
        raise ValueError(f"resources differ: only ours {sorted(mine.keys() - theirs.keys())}, "
                         f"only kubectl's {sorted(theirs.keys() - mine.keys())}")
    for k, r in mine.items():
        if r != theirs[k]:
            a = yaml.safe_dump(r).splitlines()
            b = yaml.safe_dump(theirs[k]).splitlines()
            diff = [f"ours: {x}" for x in a if x not in b][:5] + [f"kubectl: {x}" for x in b if x not in a][:5]
            raise ValueError(f"{k} differs:\n" + "\n".join(diff))


def main():
    generated = {"k8s/overlays/prod-tls": "k8s/overlays/prod-tls/envoy.yaml"}
    built = {}
    kubectl = shutil.which("kubectl")
    validated = set()
    for d in KUSTOMIZATIONS:
        check(f"kustomize build {d}", lambda d=d: built.__setitem__(d, kustomize(ROOT / d)))
        if d not in built:
            continue
        resources = built[d]
        check(f"{d}: unique resources", lambda r=resources: by_key(r))
        if kubectl:
            check(f"{d}: same as `kubectl kustomize`", lambda d=d, r=resources: same_as_kubectl(d, copy.deepcopy(r)))
        check(f"{d}: {len(resources)} resources valid against their schemas",
              lambda r=resources: [validate_resource(x) for x in r])
        check(f"{d}: security contexts, resources, pinned images", lambda r=resources: check_security(r))
        check(f"{d}: references between objects", lambda r=resources: check_references(r))
        if d == "k8s/istio":
            check(f"{d}: WasmPlugin, EnvoyFilter, ServiceEntries agree", lambda r=resources: check_istio(r))
        else:
            check(f"{d}: Envoy bootstrap from the ConfigMap (generated file, pod, envoy --mode validate)",
                  lambda d=d, r=resources: check_bootstrap(r, generated.get(d, "k8s/base/envoy/envoy.yaml"), validated))
            check(f"{d}: rate limit service config", lambda r=resources: check_ratelimit_config(r))
    if not kubectl:
        print("note  kubectl not found: the kustomize cross-check was skipped (our kustomize still ran)")
    check("every YAML file in k8s/ belongs to a kustomization", check_orphans)
    check("README deploy sections name existing files, kustomizations and make targets", check_readme)
    failed = sum(1 for _, err in results if err)
    print(f"k8s-check: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
