# Runs a program and checks its exit status and output (used for command-line tests):
#   cmake -DCOMMAND="prog;arg;..." -DEXPECT_RC=0|nonzero -DEXPECT_OUTPUT=regex [-DEXPECT_STDOUT=regex]
#         [-DINPUT=file] -P expect_run.cmake
# EXPECT_OUTPUT is matched against standard output followed by standard error; EXPECT_STDOUT, when
# given, against standard output alone.
set(_input)
if(INPUT)
  set(_input INPUT_FILE "${INPUT}")
endif()
execute_process(COMMAND ${COMMAND} ${_input} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("exit status ${rc}\n--- stdout\n${out}--- stderr\n${err}")
if(EXPECT_RC STREQUAL "nonzero")
  if(rc EQUAL 0)
    message(FATAL_ERROR "expected a non-zero exit status")
  endif()
elseif(NOT rc EQUAL EXPECT_RC)
  message(FATAL_ERROR "expected exit status ${EXPECT_RC}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECT_OUTPUT}'")
endif()
if(DEFINED EXPECT_STDOUT AND NOT "${out}" MATCHES "${EXPECT_STDOUT}")
  message(FATAL_ERROR "standard output does not match '${EXPECT_STDOUT}'")
endif()
