// The Python extension module dcn_det._C. The operators are registered with the
// PyTorch dispatcher (torch.ops.dcn_det.*) by the static initialisers of the other
// translation units when this library is loaded. The one Python function here is
// the test suite's switch (test_hooks.h), kept out of the dispatcher on purpose:
// it is not an operator. Python.h alone keeps this file cheap to compile.
#include <Python.h>

#include <string>

#include "cpu/isa/cpu_isa.h"
#include "test_hooks.h"

namespace {

// _set_test_hooks(host_device_path: bool, column_budget: int, conv_path: int)
// -> (bool, int, int), the previous values. conv_path: 0 auto, 1 fused, 2 unfused.
PyObject* set_test_hooks(PyObject*, PyObject* args) {
  int host_device_path = 0, conv_path = 0;
  long long column_budget = 0;
  if (!PyArg_ParseTuple(args, "pLi:_set_test_hooks", &host_device_path, &column_budget, &conv_path)) {
    return nullptr;
  }
  if (conv_path < 0 || conv_path > 2) {
    PyErr_Format(PyExc_ValueError, "_set_test_hooks: conv_path must be 0, 1 or 2, got %d", conv_path);
    return nullptr;
  }
  const bool previous_path = dcn_det::host_device_path_enabled();
  const long long previous_budget = dcn_det::column_budget_override();
  const int previous_conv_path = static_cast<int>(dcn_det::conv_path_override());
  dcn_det::set_test_hooks(host_device_path != 0, column_budget,
                          static_cast<dcn_det::ConvPath>(conv_path));
  return Py_BuildValue("(OLi)", previous_path ? Py_True : Py_False, previous_budget, previous_conv_path);
}

// _get_test_hooks() -> (host_device_path, column_budget, conv_path)
PyObject* get_test_hooks(PyObject*, PyObject*) {
  return Py_BuildValue("(OLi)", dcn_det::host_device_path_enabled() ? Py_True : Py_False,
                       static_cast<long long>(dcn_det::column_budget_override()),
                       static_cast<int>(dcn_det::conv_path_override()));
}

// _device_path_calls() -> int: operator calls that took the host device path.
PyObject* device_path_calls(PyObject*, PyObject*) {
  return PyLong_FromLongLong(static_cast<long long>(dcn_det::device_path_calls()));
}

// _cpu_isa() -> (selected, forced, available): names of the instruction set the CPU
// loops run with, the forced one (None), and every one this build and CPU can run.
PyObject* cpu_isa(PyObject*, PyObject*) {
  using dcn_det::cpu::CpuIsa;
  PyObject* available = PyList_New(0);
  for (CpuIsa isa : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (dcn_det::cpu::cpu_isa_available(isa)) {
      PyObject* name = PyUnicode_FromString(dcn_det::cpu::cpu_isa_name(isa));
      PyList_Append(available, name);
      Py_DECREF(name);
    }
  }
  const int forced = dcn_det::cpu::cpu_isa_override();
  PyObject* result = Py_BuildValue(
      "(sNN)", dcn_det::cpu::cpu_isa_name(dcn_det::cpu::selected_cpu_isa()),
      forced < 0 ? Py_NewRef(Py_None) : PyUnicode_FromString(dcn_det::cpu::cpu_isa_name(static_cast<CpuIsa>(forced))),
      available);
  return result;
}

// _set_cpu_isa(name or None): force the CPU loops' instruction set (test suite).
PyObject* set_cpu_isa(PyObject*, PyObject* args) {
  using dcn_det::cpu::CpuIsa;
  const char* name = nullptr;
  if (!PyArg_ParseTuple(args, "z:_set_cpu_isa", &name)) {
    return nullptr;
  }
  int isa = -1;
  if (name != nullptr) {
    for (CpuIsa candidate : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
      if (std::string(name) == dcn_det::cpu::cpu_isa_name(candidate)) isa = static_cast<int>(candidate);
    }
    if (isa < 0 || !dcn_det::cpu::cpu_isa_available(static_cast<CpuIsa>(isa))) {
      PyErr_Format(PyExc_ValueError, "_set_cpu_isa: %s is not an instruction set this build and CPU can run "
                   "(see _cpu_isa())", name);
      return nullptr;
    }
  }
  dcn_det::cpu::set_cpu_isa_override(isa);
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"_cpu_isa", cpu_isa, METH_NOARGS,
     "_cpu_isa() -> (selected, forced or None, available): instruction sets of the CPU loops."},
    {"_set_cpu_isa", set_cpu_isa, METH_VARARGS,
     "_set_cpu_isa(name or None): force the CPU loops' instruction set. Test suite only: see "
     "dcn_det/ops/_cpu_isa.py."},
    {"_device_path_calls", device_path_calls, METH_NOARGS,
     "_device_path_calls() -> number of operator calls that took the host device path. Test suite only."},
    {"_get_test_hooks", get_test_hooks, METH_NOARGS,
     "_get_test_hooks() -> (host_device_path, column_budget, conv_path). Test suite only."},
    {"_set_test_hooks", set_test_hooks, METH_VARARGS,
     "_set_test_hooks(host_device_path, column_budget, conv_path) -> the previous three. "
     "Test suite only: see dcn_det/ops/_device_path.py."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef dcn_det_module = {PyModuleDef_HEAD_INIT, "_C", "dcn_det compiled operators", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&dcn_det_module); }
