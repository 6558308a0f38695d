#include "config.h"

#include "agent/qsim-job.h"

/* Apart from qsim-job.c, which stays under the 1000-line limit */
const gchar *
qsim_job_phase_to_string(QsimJobPhase phase)
{
	switch (phase) {
	case QSIM_JOB_PHASE_CREATED:
		return "created";
	case QSIM_JOB_PHASE_STARTING:
		return "starting";
	case QSIM_JOB_PHASE_BOOTING:
		return "booting";
	case QSIM_JOB_PHASE_RUNNING:
		return "running";
	case QSIM_JOB_PHASE_STOPPING:
		return "stopping";
	case QSIM_JOB_PHASE_FINISHED:
		return "finished";
	}
	return "unknown";
}
