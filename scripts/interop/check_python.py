# README: checks the Python examples of docs/interop.md against a running Ember.
#   python3 -m venv /tmp/interop-venv && /tmp/interop-venv/bin/pip install fhirclient fhirpy
#   /tmp/interop-venv/bin/python scripts/interop/check_python.py [http://127.0.0.1:8089/fhir]
# Prints one line per step: the step, then what happened. Writes only new resources.
import json
import sys
import uuid

import requests
from fhirclient import client as fc_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirpyOutcome

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8089/fhir").rstrip("/")
RUN = uuid.uuid4().hex[:8]  # keeps the searches of one run apart from earlier runs
SYS = "urn:interop:" + RUN


def show(step, fn):
    try:
        print(f"[ok]  {step}: {fn()}")
    except requests.HTTPError as e:
        print(f"[err] {step}: {e.response.status_code} {e.response.text[:300]}")
    except FHIRNotFoundException as e:
        print(f"[err] {step}: {e.response.status_code} {e.response.text[:300]}")
    except FhirpyOutcome as e:
        print(f"[err] {step}: OperationOutcome {json.dumps(e.resource)[:300]}")
    except Exception as e:  # noqa: BLE001
        print(f"[err] {step}: {type(e).__name__}: {str(e)[:300]}")


def outcome(resp):
    return f"{resp.status_code} {resp.text[:300]}"


# ---------------------------------------------------------------- fhirclient
print("== fhirclient", BASE)
smart = fc_client.FHIRClient(settings={"app_id": "interop", "api_base": BASE})
srv = smart.server
family = "Fc" + RUN

created = Patient({"name": [{"family": family}], "birthDate": "1995-02-03"}).create(srv)
pid = created["id"]
show("create", lambda: pid)
p = Patient.read(pid, srv)
show("read", lambda: (p.id, p.name[0].family, p.meta.versionId))
p.active = True
show("update", lambda: p.update()["meta"]["versionId"])
for year in ("1980", "1985", "1990", "2000"):
    Patient({"name": [{"family": family}], "birthDate": year}).create(srv)

s = Patient.where({"family": family, "birthdate": {"$gt": "1990"}})
show("$gt builds", s.construct)
try:
    list(s.perform_iter(srv))
except requests.HTTPError as e:
    show("$gt sends", lambda: e.response.request.url)
    show("$gt answer", lambda: outcome(e.response))
s = Patient.where({"family": family, "birthdate": "gt1990"})
show("gt1990 search", lambda: sorted(r.birthDate.isostring for r in s.perform_resources_iter(srv)))
s = Patient.where({"family": family, "_sort": {"$desc": "birthdate"}})
show("$desc builds", s.construct)
show("$desc answer", lambda: [e.resource.issue[0].diagnostics for b in s.perform_iter(srv) for e in b.entry
                               if e.search.mode == "outcome"])
show("$desc, handling=strict", lambda: outcome(srv.session.get(f"{BASE}/{s.construct()}", headers={"Prefer": "handling=strict"})))
s = Patient.where({"family": family, "_sort": "-birthdate"})
show("_sort=-birthdate", lambda: [r.birthDate.isostring for r in s.perform_resources_iter(srv)])
s = Patient.where({"family": family, "_count": "2"})
show("paging (pages, resources)", lambda: (len(list(s.perform_iter(srv))), len(list(s.perform_resources_iter(srv)))))

obs = {"status": "final", "code": {"text": "weight"}, "subject": {"reference": f"Patient/{pid}"}}
Observation(obs).create(srv)
s = Observation.where({"subject": f"Patient/{pid}"}).include("subject")
show("_include builds", s.construct)
show("_include", lambda: sorted(e.search.mode for b in s.perform_iter(srv) for e in b.entry))

tx = Bundle({"type": "transaction", "entry": [{
    "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
    "resource": {"resourceType": "Patient", "name": [{"family": family}]},
    "request": {"method": "POST", "url": "Patient"}}]})
show("transaction", lambda: [e["response"]["status"] for e in tx.create(srv)["entry"]])

# No conditional create or PATCH in fhirclient: its requests.Session carries them.
hdr = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
body = {"resourceType": "Patient", "identifier": [{"system": SYS, "value": "fc"}]}
for i in (1, 2):
    r = srv.session.post(BASE + "/Patient", json=body, headers={**hdr, "If-None-Exist": f"identifier={SYS}|fc"})
    show(f"conditional create #{i}", lambda: (r.status_code, r.json().get("id")))
r = srv.session.patch(f"{BASE}/Patient/{pid}", json=[{"op": "replace", "path": "/active", "value": False}],
                      headers={**hdr, "Content-Type": "application/json-patch+json"})
show("JSON Patch", lambda: (r.status_code, r.json()["active"]))
fp = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
    {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.active"},
    {"name": "value", "valueBoolean": True}]}]}
r = srv.session.patch(f"{BASE}/Patient/{pid}", json=fp, headers=hdr)
show("FHIRPath Patch", lambda: (r.status_code, r.json()["active"]))
show("404", lambda: Patient.read("no-such-id", srv))
show("400", lambda: Patient.where({"birthdate": "not-a-date"}).perform_iter(srv).__next__())

# ---------------------------------------------------------------- fhirpy
print("== fhirpy", BASE)
fp_client = SyncFHIRClient(BASE)
family = "Fp" + RUN

pat = fp_client.resource("Patient", name=[{"family": family}], birthDate="1995-02-03")
pat.save()
show("create", lambda: pat.id)
show("read", lambda: fp_client.reference("Patient", pat.id).to_resource()["meta"]["versionId"])
pat["active"] = True
show("update", lambda: pat.save()["meta"]["versionId"])
for year in ("1980", "1985", "1990", "2000"):
    fp_client.resource("Patient", name=[{"family": family}], birthDate=year).save()
patients = fp_client.resources("Patient").search(family=family)
show("birthdate__gt", lambda: sorted(r["birthDate"] for r in patients.search(birthdate__gt="1990").fetch()))
show("paging (iterating, _count=2)", lambda: len(list(patients.limit(2))))
show("count() (_totalMethod=count)", lambda: patients.count())
org = fp_client.resource("Organization", name="Clinic " + RUN)
org.save()
pat["managingOrganization"] = {"reference": f"Organization/{org.id}"}
pat.save()
fp_client.resource("Observation", status="final", code={"text": "weight"},
                   subject={"reference": f"Patient/{pat.id}"}).save()
obs = fp_client.resources("Observation").search(subject=f"Patient/{pat.id}").include("Observation", "subject")


def types(search):
    return sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in search.fetch_raw()["entry"])


show("_include", lambda: types(obs))
show("_include:iterate", lambda: types(obs.include("Patient", "organization", iterate=True)))
show("_include:recursive", lambda: types(obs.include("Patient", "organization", recursive=True)))
bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
    {"request": {"method": "GET", "url": f"Patient?family={family}&birthdate=gt1990"}},
    {"resource": {"resourceType": "Patient", "name": [{"family": family}]},
     "request": {"method": "POST", "url": "Patient"}}]}
show("batch", lambda: [e["response"]["status"] for e in fp_client.execute("", data=bundle)["entry"]])

# merge-style PATCH: fhirpy sends the object as application/json.
show("patch (merge)", lambda: fp_client.reference("Patient", pat.id).patch(active=False))
jp = SyncFHIRClient(BASE, extra_headers={"Content-Type": "application/json-patch+json"})
show("JSON Patch via execute", lambda: jp.execute(f"Patient/{pat.id}", method="patch",
                                                  data=[{"op": "replace", "path": "/active", "value": False}])["active"])
show("FHIRPath Patch via execute", lambda: fp_client.execute(f"Patient/{pat.id}", method="patch", data=fp)["active"])

# conditional create: fhirpy puts the criteria in the query string.
qs = fp_client.resources("Patient").search(identifier=f"{SYS}|fp")
for i in (1, 2):
    show(f"get_or_create #{i}", lambda: (lambda r: (r[0].id, r[1]))(
        qs.get_or_create(fp_client.resource("Patient", identifier=[{"system": SYS, "value": "fp"}]))))
show("matches after get_or_create twice", lambda: len(qs.fetch()))
tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
    {"resource": {"resourceType": "Patient", "identifier": [{"system": SYS, "value": "fp-tx"}]},
     "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYS}|fp-tx"}}]}
for i in (1, 2):
    show(f"transaction ifNoneExist #{i}", lambda: [(e["response"]["status"], e["response"]["location"].split("/")[-3])
                                                   for e in fp_client.execute("", data=tx)["entry"]])
cc = SyncFHIRClient(BASE, extra_headers={"If-None-Exist": f"identifier={SYS}|fp-h"})
for i in (1, 2):
    show(f"If-None-Exist header #{i}", lambda: cc.resource("Patient", identifier=[{"system": SYS, "value": "fp-h"}]).save().id)
show("conditional update (created?)", lambda: fp_client.resources("Patient").search(identifier=f"{SYS}|fp-u").update(
    fp_client.resource("Patient", identifier=[{"system": SYS, "value": "fp-u"}]))[1])
fresh = fp_client.reference("Patient", pat.id).to_resource()
show("refresh(): If-None-Match " + fresh["meta"]["versionId"], lambda: fp_client._do_request(
    "get", f"Patient/{pat.id}", extra_headers={"If-None-Match": fresh["meta"]["versionId"]}, returning_status=True))
show("refresh()", lambda: fresh.refresh()["meta"]["versionId"])
show("404", lambda: fp_client.reference("Patient", "no-such-id").to_resource())
try:
    fp_client.resources("Patient").search(birthdate="not-a-date").fetch()
except FhirpyOutcome as e:
    show("400 (OperationOutcome.resource)", lambda: e.resource["issue"][0]["diagnostics"])
