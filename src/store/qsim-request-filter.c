#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-request-filter.h"

void
qsim_request_filter_init(QsimRequestFilter *self)
{
	self->status = -1;
	self->vm_name = NULL;
	self->limit = 0;
	self->before_uuid = NULL;
	self->agent_id = NULL;
	self->text = NULL;
	self->max_bytes = 0;
}
