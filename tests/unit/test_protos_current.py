"""The committed generated code is exactly what protos/generate.py makes from the .proto files."""

import importlib.util
from pathlib import Path

PROTOS = Path(__file__).resolve().parents[2] / "protos"


def load_generator():
    spec = importlib.util.spec_from_file_location("generate", PROTOS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_protos_changes_nothing(tmp_path):
    fresh = load_generator().generate(tmp_path)
    assert len(fresh) == 12  # 4 protos x (pb2, pyi, grpc)
    for path in fresh:
        committed = PROTOS / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed.name} is not committed"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed.name} is stale: run python protos/generate.py"
        )
    committed_all = sorted(p.name for p in (PROTOS / "surgedesk" / "v1").glob("*_pb2*.py*"))
    assert committed_all == sorted(p.name for p in fresh), "stray generated files"


def test_the_contract_names_the_services_and_rpcs_of_the_api():
    from surgedesk.v1 import admin_pb2, agent_pb2, customer_pb2

    def rpcs(module, service):
        return set(module.DESCRIPTOR.services_by_name[service].methods_by_name)

    assert rpcs(customer_pb2, "CustomerService") >= {
        "StartConversation", "GetQueueStatus", "SendMessage", "ConfirmResolution", "LeaveQueue",
        "GetHistory", "Rate", "WatchTicket"}
    assert rpcs(agent_pb2, "AgentService") >= {
        "SetPresence", "WatchAssignments", "SendMessage", "Transfer", "InviteCollaborator",
        "RequestClose", "CloseTicket", "EndShift", "CreateWorkOrder"}
    assert rpcs(admin_pb2, "AdminService") >= {
        "GetQueueStats", "UpsertAgent", "UpsertSkill", "SetPolicy", "PlanStaffing",
        "EraseCustomer"}
    watch = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"].methods_by_name[
        "WatchTicket"]
    assert watch.server_streaming and not watch.client_streaming


def test_the_reference_is_generated_from_the_current_comments():
    spec = importlib.util.spec_from_file_location("reference", PROTOS / "reference.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    fresh = module.render(module.descriptors())
    assert module.OUT.read_text() == fresh, "docs/api-reference.md is stale: run python protos/reference.py"
    for element in ("### CustomerService", "### AgentService", "### AdminService",
                    "| `StartConversation` |", "### TicketEvent", "`STATE_CHANGE_CAUSE_OPENED`"):
        assert element in fresh
