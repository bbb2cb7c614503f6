// The Python extension module dcn_det._C. The operators are registered with the
// PyTorch dispatcher (torch.ops.dcn_det.*) by the static initialisers of the other
// translation units when this library is loaded. The one Python function here is
// the test suite's switch (test_hooks.h), kept out of the dispatcher on purpose:
// it is not an operator. Python.h alone keeps this file cheap to compile.
#include <Python.h>

#include "test_hooks.h"

namespace {

// _set_test_hooks(host_device_path: bool, column_budget: int) -> (bool, int), the
// previous values.
PyObject* set_test_hooks(PyObject*, PyObject* args) {
  int host_device_path = 0;
  long long column_budget = 0;
  if (!PyArg_ParseTuple(args, "pL:_set_test_hooks", &host_device_path, &column_budget)) {
    return nullptr;
  }
  const bool previous_path = dcn_det::host_device_path_enabled();
  const long long previous_budget = dcn_det::column_budget_override();
  dcn_det::set_test_hooks(host_device_path != 0, column_budget);
  return Py_BuildValue("(OL)", previous_path ? Py_True : Py_False, previous_budget);
}

// _get_test_hooks() -> (host_device_path, column_budget)
PyObject* get_test_hooks(PyObject*, PyObject*) {
  return Py_BuildValue("(OL)", dcn_det::host_device_path_enabled() ? Py_True : Py_False,
                       static_cast<long long>(dcn_det::column_budget_override()));
}

// _device_path_calls() -> int: operator calls that took the host device path.
PyObject* device_path_calls(PyObject*, PyObject*) {
  return PyLong_FromLongLong(static_cast<long long>(dcn_det::device_path_calls()));
}

PyMethodDef methods[] = {
    {"_device_path_calls", device_path_calls, METH_NOARGS,
     "_device_path_calls() -> number of operator calls that took the host device path. Test suite only."},
    {"_get_test_hooks", get_test_hooks, METH_NOARGS,
     "_get_test_hooks() -> (host_device_path, column_budget). Test suite only."},
    {"_set_test_hooks", set_test_hooks, METH_VARARGS,
     "_set_test_hooks(host_device_path, column_budget) -> previous (host_device_path, column_budget). "
     "Test suite only: see dcn_det/ops/_device_path.py."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef dcn_det_module = {PyModuleDef_HEAD_INIT, "_C", "dcn_det compiled operators", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&dcn_det_module); }
