/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The HTML report's page, src/report_html.html, as bytes in the binary (report_html.c). */
	.section .rodata
	.globl report_html_template
	.type report_html_template, @object
report_html_template:
	.incbin "src/report_html.html"
	.globl report_html_template_end
report_html_template_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
